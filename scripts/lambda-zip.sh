#!/bin/sh
# Builds the PreSignUp Lambda and packages it as a provided.al2023 zip whose
# `bootstrap` is the binary:  scripts/lambda-zip.sh [--release]  → prints the zip's path.
# The debug build is what the tests upload to the emulator (it runs on this host);
# for a real account see docs/aws.md.
set -eu
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = "--release" ]; then profile=release; fi
if [ "$profile" = release ]; then
    cargo build --locked --release -p lambda-presignup >&2
else
    cargo build --locked -p lambda-presignup >&2
fi
out=target/lambda/$profile
mkdir -p "$out"
cp "target/$profile/lambda-presignup" "$out/bootstrap"
strip "$out/bootstrap" 2>/dev/null || true
python3 - "$out/presignup.zip" "$out/bootstrap" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("bootstrap")
info.external_attr = 0o755 << 16  # executable, as Lambda requires
info.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(sys.argv[1], "w") as z, open(sys.argv[2], "rb") as f:
    z.writestr(info, f.read())
PY
echo "$PWD/$out/presignup.zip"
