#!/bin/sh
# check-glibc.sh BINARY [MAX]: fails if BINARY needs a glibc symbol version newer
# than MAX (default 2.34, Amazon Linux 2023's glibc, what provided.al2023 runs).
set -eu
bin=$1
max=${2:-2.34}
for tool in file objdump; do
    command -v "$tool" >/dev/null || { echo "check-glibc: needs $tool (binutils, file)" >&2; exit 1; }
done
file "$bin" | grep -q 'ELF 64-bit LSB .*x86-64' || { echo "check-glibc: $bin is not an x86-64 ELF binary" >&2; exit 1; }
needed=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
if [ -z "$needed" ]; then
    echo "check-glibc: $bin needs no versioned glibc symbols"
    exit 0
fi
highest=$(printf '%s\n%s\n' "$needed" "$max" | sort -V | tail -1)
if [ "$highest" != "$max" ]; then
    echo "check-glibc: $bin needs GLIBC_$needed, newer than GLIBC_$max:" >&2
    objdump -T "$bin" | grep -E "GLIBC_($(echo "$needed" | sed 's/\./\\./g'))" >&2 || true
    exit 1
fi
echo "check-glibc: $bin needs at most GLIBC_$needed (limit GLIBC_$max)"
