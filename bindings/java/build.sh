#!/usr/bin/env bash
# Builds the JNI glue (libdbrt_jni.so, with libdbrt.a linked in) and the org.dbrt classes with
# the JDK on this machine, then runs ClassifyPairsTest on the host JVM against the C test's
# output, and LogTest (Dbrt.setLogger). Run tests/c/run.sh first (it writes target/c-tests/host/{pairs.tsv,c_logits.txt}).
# Android: see README.md beside this script.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=bindings/java
out=$root/target/java
java_home=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
model=$root/models/aegis-nli-xsmall-int8.dbrt
ctests=$root/target/c-tests/host
mkdir -p "$out/classes"

cargo build --quiet --release -p dbrt-ffi
# -Wl,--exclude-libs,ALL: the glue exports only its Java_ functions, not libdbrt's. The host
# build also carries LogTest's native method (src/test/c), an app's does not.
${CC:-cc} -shared -fPIC -O2 -Wall -Wextra -Werror -I "$java_home/include" -I "$java_home/include/linux" \
  -I include "$here/src/main/c/dbrt_jni.c" "$here/src/test/c/native_thread.c" target/release/libdbrt.a -lpthread -ldl -lm \
  -Wl,--exclude-libs,ALL -o "$out/libdbrt_jni.so"
javac -Werror -d "$out/classes" "$here"/src/main/java/org/dbrt/*.java "$here"/src/test/java/org/dbrt/*.java
java -Xcheck:jni -Djava.library.path="$out" -cp "$out/classes" org.dbrt.ClassifyPairsTest \
  "$model" "$ctests/pairs.tsv" "$ctests/c_logits.txt"
java -Xcheck:jni -Djava.library.path="$out" -cp "$out/classes" org.dbrt.LogTest "$model"
