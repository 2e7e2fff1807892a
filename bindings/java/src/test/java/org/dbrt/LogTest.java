package org.dbrt;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Dbrt.setLogger: libdbrt's warning for a backend that cannot attach reaches the Java logger
 * with its level and text, also from another Java thread and from a native thread the JVM did
 * not know (attached for the message); a throwing logger does not take the caller down; the
 * threshold filters; null stops the messages.
 *
 * <p>usage: LogTest MODEL.dbrt
 */
public final class LogTest {
  private static int checks = 0;

  private static void check(boolean cond, String what) {
    if (!cond) throw new AssertionError(what);
    checks++;
  }

  /** The same on a thread made by C (src/test/c/native_thread.c); returns its dbrt_status. */
  private static native int warnOnNativeThread(long model);

  /** A session on an accelerator whose library is absent: it warns and runs on the CPU. */
  private static void sessionThatWarns(Model model) {
    SessionOptions absent = new SessionOptions().backend("ort-cpu")
        .onnxruntimeLibrary("/nonexistent/libonnxruntime.so");
    try (Session s = new Session(model, absent)) {
      check(s.backend().equals("cpu"), "the session fell back to the CPU");
    }
  }

  /** The warnings among "level message" entries (a session also says its kernels, at info). */
  private static List<String> warnings(List<String> seen) {
    synchronized (seen) {
      List<String> w = new ArrayList<>();
      for (String m : seen) if (m.startsWith(Dbrt.LOG_WARN + " ")) w.add(m);
      return w;
    }
  }

  public static void main(String[] args) throws Exception {
    List<String> seen = Collections.synchronizedList(new ArrayList<>());
    try (Model model = Model.open(args[0])) {
      sessionThatWarns(model); // no logger: dropped
      Dbrt.setLogger((level, message) -> seen.add(level + " " + message));
      sessionThatWarns(model);
      List<String> w = warnings(seen);
      check(w.size() == 1, "one warning: " + seen);
      check(w.get(0).startsWith(Dbrt.LOG_WARN + " backend ort-cpu did not attach, running on the CPU"), w.get(0));
      check(w.get(0).contains("/nonexistent/libonnxruntime.so"), w.get(0));

      Thread other = new Thread(() -> sessionThatWarns(model));
      other.start();
      other.join();
      check(warnings(seen).size() == 2, "a warning from another Java thread: " + seen);
      check(warnOnNativeThread(model.live()) == 0, "a session on a native thread");
      check(warnings(seen).size() == 3, "a warning from a thread the JVM did not know: " + seen);
      int count = seen.size();

      Dbrt.setLogger((level, message) -> {
        throw new IllegalStateException("a logger that throws");
      });
      sessionThatWarns(model); // the throw is dropped: no exception here

      Dbrt.setLogger((level, message) -> seen.add(level + " " + message), Dbrt.LOG_ERROR);
      sessionThatWarns(model);
      check(seen.size() == count, "messages above LOG_ERROR are filtered: " + seen);
      try {
        Dbrt.setLogger((level, message) -> {}, 9);
        check(false, "level 9 throws");
      } catch (DbrtException e) {
        check(e.statusName().equals("DBRT_INVALID_ARGUMENT"), e.getMessage());
      }
      Dbrt.setLogger(null);
      sessionThatWarns(model);
      check(seen.size() == count, "no logger, no message: " + seen);
    }
    System.err.println("LogTest: " + checks + " checks passed");
  }
}
