#!/usr/bin/env bash
# Builds libdbrt for Android with the `mobile` profile, for each ABI in ANDROID_ABIS (default
# "arm64-v8a x86_64": phones, and the emulators on x86_64 machines):
# - static libraries target/<rust target>/mobile/libdbrt.a (no NDK needed);
# - with the NDK (ANDROID_NDK_HOME, API level ANDROID_API, default 24): libdbrt.so and the JNI
#   glue libdbrt_jni.so, stripped, in target/android/jniLibs/<abi>/ — copy that folder into an
#   app's src/main/jniLibs and the org.dbrt classes (bindings/java/src/main/java) into its
#   sources. `cargo ndk -t arm64-v8a -t x86_64 build -p dbrt-ffi --profile mobile` does the
#   Rust half too.
# It checks everything it needs before building: a missing rust-std (rustup target add ...) or
# NDK is an error. `--static-only` builds only the static libraries, without the NDK (CI uses it
# to prove the runtime compiles for Android).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
static_only=0
case "${1:-}" in
  "") ;;
  --static-only) static_only=1 ;;
  *)
    echo "usage: scripts/build-android.sh [--static-only]   (ABIs: ANDROID_ABIS, default 'arm64-v8a x86_64')" >&2
    exit 2
    ;;
esac
abis=${ANDROID_ABIS:-arm64-v8a x86_64}
api=${ANDROID_API:-24}

rust_target() {
  case "$1" in
    arm64-v8a) echo aarch64-linux-android ;;
    x86_64) echo x86_64-linux-android ;;
    *) return 1 ;;
  esac
}

# Checks first: nothing is built unless everything asked for can be.
problems=()
installed=$(rustup target list --installed 2>/dev/null || true)
for abi in $abis; do
  if ! target=$(rust_target "$abi"); then
    problems+=("ABI '$abi' is not supported (ANDROID_ABIS takes arm64-v8a and x86_64)")
  elif ! grep -qx "$target" <<<"$installed"; then
    problems+=("rust-std for $target ($abi) is not installed: rustup target add $target")
  fi
done
if [ "$static_only" = 0 ]; then
  if [ -z "${ANDROID_NDK_HOME:-}" ]; then
    problems+=("ANDROID_NDK_HOME is not set: the NDK links libdbrt.so and libdbrt_jni.so (or pass --static-only)")
  else
    bin=$(echo "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin)
    for abi in $abis; do
      target=$(rust_target "$abi") || continue
      if [ ! -x "$bin/$target$api-clang" ]; then
        problems+=("the NDK at $ANDROID_NDK_HOME has no $target$api-clang (ANDROID_API=$api)")
      fi
    done
  fi
fi
if [ "${#problems[@]}" != 0 ]; then
  printf 'build-android: %s\n' "${problems[@]}" >&2
  exit 1
fi

for abi in $abis; do
  target=$(rust_target "$abi")
  cargo rustc --quiet -p dbrt-ffi --profile mobile --target "$target" --crate-type staticlib
  echo "built target/$target/mobile/libdbrt.a"
  if [ "$static_only" = 1 ]; then
    continue
  fi
  cc=$bin/$target$api-clang
  out=target/android/jniLibs/$abi
  mkdir -p "$out"
  linker_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER
  env "$linker_var=$cc" cargo build --quiet -p dbrt-ffi --profile mobile --target "$target"
  cp "target/$target/mobile/libdbrt.so" "$out/"
  "$cc" -shared -fPIC -O2 -I include bindings/java/src/main/c/dbrt_jni.c "target/$target/mobile/libdbrt.a" \
    -lm -ldl -Wl,--exclude-libs,ALL -Wl,--gc-sections -o "$out/libdbrt_jni.so"
  "$bin/llvm-strip" "$out"/*.so
  ls -l "$out"
done
