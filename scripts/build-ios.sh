#!/usr/bin/env bash
# Builds libdbrt for iOS with the `mobile` profile: static libraries for devices
# (aarch64-apple-ios) and the Apple-silicon simulator (aarch64-apple-ios-sim), then, on a Mac
# with Xcode, packages them with include/dbrt.h as target/ios/Dbrt.xcframework:
#   xcodebuild -create-xcframework -library <device libdbrt.a> -headers include \
#              -library <simulator libdbrt.a> -headers include -output Dbrt.xcframework
# Without Xcode (Linux CI) it builds the static libraries it can and stops: that proves the
# runtime compiles for iOS. A target whose rust-std is not installed is reported and skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
built=()
for target in aarch64-apple-ios aarch64-apple-ios-sim; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build-ios: rust-std for $target is not installed (rustup target add $target); skipped" >&2
    continue
  fi
  cargo rustc --quiet -p dbrt-ffi --profile mobile --target "$target" --crate-type staticlib
  echo "built target/$target/mobile/libdbrt.a"
  built+=("$target")
done
if [ "${#built[@]}" = 0 ]; then
  echo "build-ios: no iOS target built" >&2
  exit 1
fi
if ! command -v xcodebuild >/dev/null; then
  echo "build-ios: xcodebuild (Xcode) packages the XCFramework; stopping after the static libraries" >&2
  exit 0
fi
args=()
for target in "${built[@]}"; do
  args+=(-library "target/$target/mobile/libdbrt.a" -headers include)
done
rm -rf target/ios/Dbrt.xcframework
xcodebuild -create-xcframework "${args[@]}" -output target/ios/Dbrt.xcframework
