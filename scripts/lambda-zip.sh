#!/bin/sh
# Builds the PreSignUp Lambda and packages it as a provided.al2023 zip whose
# `bootstrap` is the binary; prints the zip's path.
#
#   scripts/lambda-zip.sh            debug build for this host (quick, for local emulator runs)
#   scripts/lambda-zip.sh --al2023   release build for AWS Lambda (provided.al2023, x86_64),
#                                    linked against glibc 2.34 with cargo-zigbuild and checked
#
# --al2023 installs, on first use, cargo-zigbuild (crates.io) into .tools/ and
# Zig (the `ziglang` package from PyPI) into .tools/zig-venv.
set -eu
cd "$(dirname "$0")/.."
ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.15.2
GLIBC=2.34

case "${1:-}" in
    "")
        cargo build --locked -p lambda-presignup >&2
        binary=target/debug/lambda-presignup
        out=target/lambda/debug
        ;;
    --al2023)
        tools=$PWD/.tools
        if [ ! -x "$tools/bin/cargo-zigbuild" ]; then
            cargo install --locked --quiet --root "$tools" cargo-zigbuild --version "$ZIGBUILD_VERSION" >&2
        fi
        if [ ! -x "$tools/zig-venv/bin/python3" ] || ! "$tools/zig-venv/bin/python3" -m ziglang version >/dev/null 2>&1; then
            python3 -m venv "$tools/zig-venv" >&2
            "$tools/zig-venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" >&2
        fi
        # cargo-zigbuild finds Zig as `python3 -m ziglang`.
        PATH="$tools/zig-venv/bin:$tools/bin:$PATH" \
            cargo zigbuild --locked --release -p lambda-presignup --target "x86_64-unknown-linux-gnu.$GLIBC" >&2
        binary=target/x86_64-unknown-linux-gnu/release/lambda-presignup
        out=target/lambda/al2023-x86_64
        ;;
    *)
        echo "usage: $0 [--al2023]" >&2
        exit 2
        ;;
esac

mkdir -p "$out"
cp "$binary" "$out/bootstrap"
strip "$out/bootstrap" 2>/dev/null || true
if [ "${1:-}" = --al2023 ]; then
    ./scripts/check-glibc.sh "$out/bootstrap" "$GLIBC" >&2
fi
python3 - "$out/presignup.zip" "$out/bootstrap" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("bootstrap")
info.external_attr = 0o755 << 16  # executable, as Lambda requires
info.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(sys.argv[1], "w") as z, open(sys.argv[2], "rb") as f:
    z.writestr(info, f.read())
PY
echo "$PWD/$out/presignup.zip"
