package org.dbrt;

import java.nio.charset.StandardCharsets;

/**
 * Runs a model: one thread at a time (a concurrent call fails with DBRT_SESSION_BUSY); create
 * one per thread. Close it when done: it owns worker threads and scratch memory.
 */
public final class Session implements AutoCloseable {
  private long handle;
  private final int labels;

  /** A session with the defaults: one thread, the model's maximum length. */
  public Session(Model model) {
    this(model, 1, 0, -1);
  }

  /**
   * @param threads threads per forward pass (results are identical for any count)
   * @param maxSequenceLength longest input in tokens, 0 for the model's maximum
   * @param entailmentLabel the label zero-shot reads as entailment, -1 to find it by name
   */
  public Session(Model model, int threads, int maxSequenceLength, int entailmentLabel) {
    this(model, new SessionOptions().threads(threads).maxSequenceLength(maxSequenceLength)
        .entailmentLabel(entailmentLabel));
  }

  /** A session with {@code options}, including where its encoder runs. */
  public Session(Model model, SessionOptions options) {
    handle = Native.sessionCreate(model.live(), options.threads, options.maxSequenceLength,
        options.entailmentLabel, utf8(options.backend), utf8(options.artifacts), options.fallback,
        utf8(options.onnxruntimeLibrary), utf8(options.qnnLibrary));
    labels = model.labels().length;
  }

  /**
   * Why backend {@code name} cannot run here, or null if it can (its libraries load and it
   * finds a device), with the library paths of {@code options} (null: the environment's).
   */
  public static String backendUnavailableReason(String name, SessionOptions options) {
    SessionOptions o = options == null ? new SessionOptions() : options;
    return Native.backendUnavailableReason(utf8(name), utf8(o.onnxruntimeLibrary), utf8(o.qnnLibrary));
  }

  /** Label probabilities of a (premise, hypothesis) pair; {@code hypothesis} may be null. */
  public float[] classify(String premise, String hypothesis) {
    float[] out = new float[labels];
    Native.classify(live(), utf8(premise), utf8(hypothesis), out, false);
    return out;
  }

  /** The logits of a (premise, hypothesis) pair; {@code hypothesis} may be null. */
  public float[] classifyLogits(String premise, String hypothesis) {
    float[] out = new float[labels];
    Native.classify(live(), utf8(premise), utf8(hypothesis), out, true);
    return out;
  }

  /** Token ids of a text or pair, as the model's tokenizer gives them. */
  public int[] tokenize(String text, String pair) {
    byte[] a = utf8(text), b = utf8(pair);
    int[] ids = new int[128];
    int n = Native.tokenize(live(), a, b, ids);
    if (n > ids.length) {
      ids = new int[n];
      n = Native.tokenize(live(), a, b, ids);
    }
    return java.util.Arrays.copyOf(ids, n);
  }

  /**
   * Zero-shot scores of {@code text} for each candidate label, as Hugging Face's pipeline.
   * @param template the hypothesis with "{}" for the label; null for "This example is {}."
   */
  public float[] classifyZeroShot(String text, String[] candidates, String template, boolean multiLabel) {
    byte[][] raw = new byte[candidates.length][];
    for (int i = 0; i < raw.length; i++) raw[i] = utf8(candidates[i]);
    float[] out = new float[candidates.length];
    Native.classifyZeroShot(live(), utf8(text), raw, utf8(template), multiLabel, out);
    return out;
  }

  /** The kernel tier this session runs, e.g. "avx2" or "neon-dotprod". */
  public String isa() {
    return Native.sessionIsa(live());
  }

  /** The backend the encoder is attached to: "cpu", or the accelerator that attached. */
  public String backend() {
    return Native.sessionBackend(live(), false);
  }

  /** The backend that ran the last call's encoder ("cpu", "qnn", ...), "none" before any. */
  public String lastBackend() {
    return Native.sessionBackend(live(), true);
  }

  /**
   * Why the last call ran on the CPU instead of the session's backend (before any call: why the
   * backend did not attach), as "kind: message"; null if it did not fall back.
   */
  public String lastFallback() {
    return Native.sessionLastFallback(live());
  }

  private long live() {
    if (handle == 0) throw new IllegalStateException("the session is closed");
    return handle;
  }

  private static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public synchronized void close() {
    Native.sessionFree(handle);
    handle = 0;
  }
}
