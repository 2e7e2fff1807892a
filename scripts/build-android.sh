#!/usr/bin/env bash
# Builds libdbrt for Android (arm64-v8a) with the `mobile` profile.
# - Always: the static library target/aarch64-linux-android/mobile/libdbrt.a (no NDK needed;
#   CI builds it to prove the runtime compiles for Android).
# - With the NDK (ANDROID_NDK_HOME, API level ANDROID_API, default 24): libdbrt.so and the JNI
#   glue libdbrt_jni.so, stripped, in target/android/jniLibs/arm64-v8a/ — copy that folder into
#   an app's src/main/jniLibs and the org.dbrt classes (bindings/java/src/main/java) into its
#   sources. `cargo ndk -t arm64-v8a build -p dbrt-ffi --profile mobile` does the Rust half too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=aarch64-linux-android
cargo rustc --quiet -p dbrt-ffi --profile mobile --target "$target" --crate-type staticlib
echo "built target/$target/mobile/libdbrt.a"
if [ -z "${ANDROID_NDK_HOME:-}" ]; then
  echo "ANDROID_NDK_HOME is not set: the NDK links libdbrt.so and libdbrt_jni.so; stopping here" >&2
  exit 0
fi
api=${ANDROID_API:-24}
bin=$(echo "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin)
cc=$bin/aarch64-linux-android$api-clang
out=target/android/jniLibs/arm64-v8a
mkdir -p "$out"
CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER=$cc cargo build --quiet -p dbrt-ffi --profile mobile --target "$target"
cp "target/$target/mobile/libdbrt.so" "$out/"
"$cc" -shared -fPIC -O2 -I include bindings/java/src/main/c/dbrt_jni.c "target/$target/mobile/libdbrt.a" \
  -lm -ldl -Wl,--exclude-libs,ALL -Wl,--gc-sections -o "$out/libdbrt_jni.so"
"$bin/llvm-strip" "$out"/*.so
ls -l "$out"
