package org.dbrt;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;

/**
 * The Java binding on the host JVM: opens the real model (from a path and from bytes),
 * classifies the fixture pairs and requires the logits the C test wrote, bit for bit; then
 * probabilities, zero-shot, tokenizing and the errors a Java caller sees.
 *
 * <p>usage: ClassifyPairsTest MODEL.dbrt PAIRS.tsv C_LOGITS.txt
 */
public final class ClassifyPairsTest {
  private static int checks = 0;

  private static void check(boolean cond, String what) {
    if (!cond) throw new AssertionError(what);
    checks++;
  }

  public static void main(String[] args) throws IOException {
    List<String> pairs = Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8);
    List<String> cLogits = Files.readAllLines(Paths.get(args[2]), StandardCharsets.UTF_8);
    check(pairs.size() == cLogits.size() && !pairs.isEmpty(), "one C line per pair");
    check(!Model.version().isEmpty(), "a version");

    try (Model model = Model.open(args[0]);
        Model copy = Model.fromBytes(Files.readAllBytes(Paths.get(args[0])));
        Session session = new Session(model);
        Session other = new Session(copy, 2, 0, 0)) {
      check(model.labels().length == 2, "two labels");
      int n = model.labels().length;
      int differing = 0;
      for (int i = 0; i < pairs.size(); i++) {
        String[] ph = pairs.get(i).split("\t", -1);
        float[] logits = session.classifyLogits(ph[0], ph[1]);
        String[] want = cLogits.get(i).split("\t");
        check(want.length == n, "row " + i + " has " + n + " C logits");
        for (int k = 0; k < n; k++) {
          if (Float.floatToIntBits(logits[k]) != Float.floatToIntBits(Float.parseFloat(want[k]))) differing++;
        }
        if (i < 64) {
          float[] again = other.classifyLogits(ph[0], ph[1]);
          check(java.util.Arrays.equals(again, logits), "a copied model, 2 threads: same logits");
          float[] p = session.classify(ph[0], ph[1]);
          check(Math.abs(p[0] + p[1] - 1f) < 1e-5f, "probabilities sum to 1");
        }
      }
      check(differing == 0, differing + " logits differ from the C API's");

      // Zero-shot over label 0 as entailment: single-label scores sum to one.
      float[] z = other.classifyZeroShot("The striker scored twice.", new String[] {"sports", "cooking"}, null, false);
      check(Math.abs(z[0] + z[1] - 1f) < 1e-5f, "zero-shot scores sum to 1");
      int[] ids = session.tokenize("A man plays a guitar.", "A person makes music.");
      check(ids.length > 4 && ids[0] == 1 && ids[ids.length - 1] == 2, "[CLS] ... [SEP]");
      StringBuilder longText = new StringBuilder();
      for (int i = 0; i < 300; i++) longText.append("word ");
      check(session.tokenize(longText.toString(), null).length > 128, "a long text grows the buffer");

      // Errors arrive as DbrtException with their status.
      try {
        session.classifyZeroShot("x", new String[] {"a"}, null, false);
        check(false, "zero-shot without an entailment label throws");
      } catch (DbrtException e) {
        check(e.statusName().equals("DBRT_NO_ENTAILMENT_LABEL"), e.getMessage());
      }
      try {
        Model.open("/nonexistent/model.dbrt");
        check(false, "a missing file throws");
      } catch (DbrtException e) {
        check(e.statusName().equals("DBRT_IO_ERROR") && e.status() == 9, e.getMessage());
      }
      try {
        Model.fromBytes(new byte[] {1, 2, 3});
        check(false, "garbage throws");
      } catch (DbrtException e) {
        check(e.statusName().equals("DBRT_NOT_A_MODEL"), e.getMessage());
      }
      // Where the encoder ran: the CPU by default; an accelerator whose library is absent falls
      // back to the CPU and says why; an unknown backend is refused by name.
      check(session.backend().equals("cpu"), "the default backend is the CPU");
      check(session.lastBackend().equals("cpu"), "the last call ran on the CPU");
      check(session.lastFallback() == null, "no fallback on the CPU");
      SessionOptions absent = new SessionOptions().backend("ort-cpu").artifacts("/nonexistent/artifacts")
          .onnxruntimeLibrary("/nonexistent/libonnxruntime.so");
      String why = Session.backendUnavailableReason("ort-cpu", absent);
      check(why != null && why.contains("/nonexistent/libonnxruntime.so"), "why ort-cpu is unavailable: " + why);
      try (Session fallback = new Session(model, absent)) {
        check(fallback.backend().equals("cpu"), "a backend that cannot attach leaves the CPU");
        String reason = fallback.lastFallback();
        check(reason != null && reason.startsWith("backend unavailable"), "the fallback is recorded: " + reason);
        float[] logits = fallback.classifyLogits("A man plays a guitar.", "A person makes music.");
        check(java.util.Arrays.equals(logits, session.classifyLogits("A man plays a guitar.", "A person makes music.")),
            "the fallback computes the CPU's logits");
        check(fallback.lastBackend().equals("cpu"), "and records the CPU as what ran");
      }
      try (Session never = new Session(model, absent.fallback(SessionOptions.FALLBACK_NEVER))) {
        check(false, "FALLBACK_NEVER with an absent library throws");
      } catch (DbrtException e) {
        check(e.statusName().equals("DBRT_BACKEND_UNAVAILABLE"), e.getMessage());
      }
      try (Session unknown = new Session(model, new SessionOptions().backend("tpu"))) {
        check(false, "an unknown backend throws");
      } catch (DbrtException e) {
        check(e.statusName().equals("DBRT_UNKNOWN_BACKEND"), e.getMessage());
      }
      System.err.println(
          "ClassifyPairsTest: " + pairs.size() + " pairs equal to the C API's, kernels " + session.isa()
              + ", " + checks + " checks passed");
    }
  }
}
