package org.dbrt;

/**
 * How a {@link Session} is made: threads, length, and where its encoder runs. Setters return
 * {@code this}, so options read as one chain:
 *
 * <pre>{@code
 * new SessionOptions().threads(2).backend("qnn").artifacts("/data/local/tmp/aegis-qnn")
 * }</pre>
 */
public final class SessionOptions {
  /** Fallback policies, as the C API's {@code dbrt_fallback_policy}. */
  public static final int FALLBACK_ALWAYS = 0;
  public static final int FALLBACK_NOT_ON_DEVICE_ERROR = 1;
  public static final int FALLBACK_NEVER = 2;

  int threads = 1;
  int maxSequenceLength = 0;
  int entailmentLabel = -1;
  String backend = "cpu";
  String artifacts = null;
  int fallback = FALLBACK_ALWAYS;
  String onnxruntimeLibrary = null;
  String qnnLibrary = null;

  /** Threads per forward pass (results are identical for any count). */
  public SessionOptions threads(int threads) {
    this.threads = threads;
    return this;
  }

  /** Longest input in tokens; 0 for the model's maximum. */
  public SessionOptions maxSequenceLength(int tokens) {
    this.maxSequenceLength = tokens;
    return this;
  }

  /** The label zero-shot reads as entailment; -1 to find it by name. */
  public SessionOptions entailmentLabel(int label) {
    this.entailmentLabel = label;
    return this;
  }

  /** "cpu" (default), "auto", "qnn", "ort-cpu" or "ascend" (AscendCL from DBRT_ASCENDCL_LIB). */
  public SessionOptions backend(String name) {
    this.backend = name;
    return this;
  }

  /** The directory {@code dbrt-convert export-onnx} wrote for this model. */
  public SessionOptions artifacts(String dir) {
    this.artifacts = dir;
    return this;
  }

  /** One of the FALLBACK_ constants. */
  public SessionOptions fallback(int policy) {
    this.fallback = policy;
    return this;
  }

  /** Path of libonnxruntime.so (default: DBRT_ONNXRUNTIME_LIB, then the system's). */
  public SessionOptions onnxruntimeLibrary(String path) {
    this.onnxruntimeLibrary = path;
    return this;
  }

  /** Path of libonnxruntime_providers_qnn.so, next to libQnnHtp.so (default: DBRT_QNN_EP_LIB). */
  public SessionOptions qnnLibrary(String path) {
    this.qnnLibrary = path;
    return this;
  }
}
