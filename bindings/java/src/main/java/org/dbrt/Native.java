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

  /** logger null: messages are dropped. Calls are serialized by Dbrt.setLogger. */
  static native void setLogger(Dbrt.Logger logger, int maxLevel);

  static native long modelOpen(byte[] path);

  static native long modelOpenBytes(byte[] data);

  static native void modelFree(long model);

  static native byte[][] modelLabels(long model);

  static native int modelMaxSequenceLength(long model);

  /**
   * threads, maxSequenceLength, entailmentLabel: 0 / 0 / -1 keep the defaults; backend, the
   * artifact directory and library paths as UTF-8 (null: the default).
   */
  static native long sessionCreate(long model, int threads, int maxSequenceLength, int entailmentLabel,
      byte[] backend, byte[] artifacts, int fallback, byte[] onnxruntimeLibrary, byte[] qnnLibrary);

  /** null if the backend can run here, else why not. */
  static native String backendUnavailableReason(byte[] name, byte[] onnxruntimeLibrary, byte[] qnnLibrary);

  /** The session's backend, or (last) the one that ran its last call. */
  static native String sessionBackend(long session, boolean last);

  /** "kind: message" of the session's last fallback, or null. */
  static native String sessionLastFallback(long session);

  static native void sessionFree(long session);

  static native String sessionIsa(long session);

  /** The token count; when it exceeds {@code ids.length}, ids is untouched: call again. */
  static native int tokenize(long session, byte[] text, byte[] pair, int[] ids);

  static native void classify(long session, byte[] text, byte[] pair, float[] out, boolean logits);

  static native void classifyZeroShot(
      long session, byte[] text, byte[][] labels, byte[] template, boolean multiLabel, float[] out);
}
