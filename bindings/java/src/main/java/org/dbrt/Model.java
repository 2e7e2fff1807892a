package org.dbrt;

import java.nio.charset.StandardCharsets;

/** An opened .dbrt model: immutable and shareable by threads; close it when done. */
public final class Model implements AutoCloseable {
  long handle;
  private final String[] labels;

  private Model(long handle) {
    this.handle = handle;
    byte[][] raw = Native.modelLabels(handle);
    labels = new String[raw.length];
    for (int i = 0; i < raw.length; i++) labels[i] = new String(raw[i], StandardCharsets.UTF_8);
  }

  /** Maps the model file at {@code path}. */
  public static Model open(String path) {
    return new Model(Native.modelOpen(path.getBytes(StandardCharsets.UTF_8)));
  }

  /** Opens a model from bytes in memory (an Android asset read into an array), copying them. */
  public static Model fromBytes(byte[] data) {
    return new Model(Native.modelOpenBytes(data));
  }

  /** The label names, index = logit position. */
  public String[] labels() {
    return labels.clone();
  }

  public int maxSequenceLength() {
    return Native.modelMaxSequenceLength(live());
  }

  long live() {
    if (handle == 0) throw new IllegalStateException("the model is closed");
    return handle;
  }

  /** The library's version. */
  public static String version() {
    return Native.version();
  }

  /** Releases this reference; sessions keep their own. Closing twice is harmless. */
  @Override
  public synchronized void close() {
    Native.modelFree(handle);
    handle = 0;
  }
}
