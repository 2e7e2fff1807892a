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
    handle = Native.sessionCreate(model.live(), threads, maxSequenceLength, entailmentLabel);
    labels = model.labels().length;
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
