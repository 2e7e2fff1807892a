#!/usr/bin/env bash
# Installs libdbrt for C programs under PREFIX (e.g. /usr/local, or a directory of one's own):
#   PREFIX/include/dbrt.h
#   PREFIX/lib/libdbrt.a, PREFIX/lib/libdbrt.so.N (N: the ABI version, the library's SONAME)
#   PREFIX/lib/libdbrt.so -> libdbrt.so.N   (what -ldbrt finds when linking)
#   PREFIX/lib/pkgconfig/dbrt.pc            (pkg-config --cflags --libs dbrt; --static adds the
#                                            system libraries libdbrt.a needs)
# dbrt.pc is written here, not by the build: it names the install prefix, which only this step
# knows (a cargo build script may write only into its OUT_DIR).
# It builds the release library first (cargo build --release -p dbrt-ffi), for DBRT_TARGET (a
# rust target triple) if set, else for this machine. Use it with
#   PKG_CONFIG_PATH=PREFIX/lib/pkgconfig cc app.c $(pkg-config --cflags --libs dbrt)
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: scripts/install.sh PREFIX   (installs libdbrt, dbrt.h and dbrt.pc under PREFIX)" >&2
  exit 2
fi
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${DBRT_TARGET:-}
cargo build --quiet --release -p dbrt-ffi ${target:+--target "$target"}
built=target/${target:+$target/}release

abi=$(sed -n 's/^#define DBRT_API_VERSION \([0-9][0-9]*\)$/\1/p' include/dbrt.h)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if [ -z "$abi" ] || [ -z "$version" ]; then
  echo "install.sh: cannot read DBRT_API_VERSION from include/dbrt.h or the version from Cargo.toml" >&2
  exit 1
fi
soname=$(readelf -d "$built/libdbrt.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != "libdbrt.so.$abi" ]; then
  echo "install.sh: $built/libdbrt.so has SONAME '$soname', expected libdbrt.so.$abi (ffi/build.rs)" >&2
  exit 1
fi

install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 include/dbrt.h "$prefix/include/dbrt.h"
install -m 644 "$built/libdbrt.a" "$prefix/lib/libdbrt.a"
install -m 755 "$built/libdbrt.so" "$prefix/lib/libdbrt.so.$abi"
ln -sfn "libdbrt.so.$abi" "$prefix/lib/libdbrt.so"
cat >"$prefix/lib/pkgconfig/dbrt.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: dbrt
Description: On-device inference for DeBERTa-v3 models (C API, include/dbrt.h)
Version: $version
Libs: -L\${libdir} -ldbrt
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC
echo "installed libdbrt $version (libdbrt.so.$abi), dbrt.h and dbrt.pc under $prefix"
