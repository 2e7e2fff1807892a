package org.dbrt;

import java.nio.charset.StandardCharsets;

/**
 * Process-wide settings of libdbrt: where its log messages go.
 *
 * <pre>{@code
 * Dbrt.setLogger((level, message) -> android.util.Log.println(
 *     level <= Dbrt.LOG_ERROR ? Log.ERROR : level == Dbrt.LOG_WARN ? Log.WARN : Log.INFO,
 *     "dbrt", message), Dbrt.LOG_INFO);
 * }</pre>
 */
public final class Dbrt {
  /** Log levels, as the C API's {@code dbrt_log_level}: smaller is more severe. */
  public static final int LOG_OFF = 0;
  public static final int LOG_ERROR = 1;
  public static final int LOG_WARN = 2;
  public static final int LOG_INFO = 3;
  public static final int LOG_DEBUG = 4;
  public static final int LOG_TRACE = 5;

  /** Receives libdbrt's log messages. */
  @FunctionalInterface
  public interface Logger {
    /**
     * Called from any thread that uses dbrt, including dbrt's own worker threads (attached to
     * the JVM as daemon threads for the call), possibly several at once: it must be thread safe.
     * What it throws is caught and dropped.
     */
    void log(int level, String message);
  }

  private Dbrt() {}

  /** The library's version, e.g. "0.1.0". */
  public static String version() {
    return Native.version();
  }

  /**
   * Routes libdbrt's messages with a level up to {@code maxLevel} (LOG_ERROR .. LOG_TRACE) to
   * {@code logger}, replacing the previous one; null drops them again (the default). When this
   * returns, the previous logger is not called any more.
   *
   * @throws DbrtException DBRT_INVALID_ARGUMENT for a level outside LOG_OFF .. LOG_TRACE
   */
  public static synchronized void setLogger(Logger logger, int maxLevel) {
    Native.setLogger(logger, maxLevel);
  }

  /** {@link #setLogger(Logger, int)} with LOG_INFO. */
  public static void setLogger(Logger logger) {
    setLogger(logger, LOG_INFO);
  }

  /** Called by the JNI glue for each message (UTF-8 bytes: JNI's strings differ). */
  static void deliver(Logger logger, int level, byte[] message) {
    try {
      logger.log(level, new String(message, StandardCharsets.UTF_8));
    } catch (Throwable ignored) {
      // A logger's failure must not reach dbrt's caller, nor a worker thread.
    }
  }
}
