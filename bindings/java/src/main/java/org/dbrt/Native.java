package org.dbrt;

/**
 * The JNI glue (bindings/java/src/main/c/dbrt_jni.c) over libdbrt's C API. Strings cross as
 * UTF-8 byte arrays (Java's own "modified UTF-8" differs for NUL and supplementary characters);
 * a failed call throws {@link DbrtException}.
 */
final class Native {
  static {
    System.loadLibrary("dbrt_jni");
  }

  private Native() {}

  static native String version();

  static native long modelOpen(byte[] path);

  static native long modelOpenBytes(byte[] data);

  static native void modelFree(long model);

  static native byte[][] modelLabels(long model);

  static native int modelMaxSequenceLength(long model);

  /** threads, maxSequenceLength, entailmentLabel: 0 / 0 / -1 keep the defaults. */
  static native long sessionCreate(long model, int threads, int maxSequenceLength, int entailmentLabel);

  static native void sessionFree(long session);

  static native String sessionIsa(long session);

  /** The token count; when it exceeds {@code ids.length}, ids is untouched: call again. */
  static native int tokenize(long session, byte[] text, byte[] pair, int[] ids);

  static native void classify(long session, byte[] text, byte[] pair, float[] out, boolean logits);

  static native void classifyZeroShot(
      long session, byte[] text, byte[][] labels, byte[] template, boolean multiLabel, float[] out);
}
