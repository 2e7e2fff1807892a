/* Encoder offload through the C API. Always: the option setters' statuses, an unknown backend,
 * dbrt_backend_available with a library that is not there, and a session whose backend cannot
 * attach (it records why and computes the CPU's logits). With an artifact directory and a
 * backend name: a session with DBRT_FALLBACK_NEVER on that backend classifies the pairs, each
 * call recorded as run by it, and its logits are compared with the CPU's on the same model
 * (argmax agreement and max |dlogit| printed; argmax must agree where the CPU's margin is at
 * least MARGIN, and on at least 99% of the pairs).
 *
 * usage: offload MODEL.dbrt PAIRS.tsv [BACKEND ARTIFACTS_DIR MAX_PAIRS] */
#include <math.h>

#include "dbrt_test.h"

#define MARGIN 0.25f

static size_t argmax(const float *v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

static dbrt_session *session_on(dbrt_model *model, const char *backend, const char *dir, int32_t fallback,
                                const char *ort_lib, dbrt_status want) {
  dbrt_session_options *o = NULL;
  CHECK(dbrt_session_options_create(&o));
  CHECK(dbrt_session_options_set_backend(o, backend, strlen(backend)));
  if (dir) CHECK(dbrt_session_options_set_artifacts(o, dir, strlen(dir)));
  if (ort_lib) CHECK(dbrt_session_options_set_onnxruntime_library(o, ort_lib, strlen(ort_lib)));
  CHECK(dbrt_session_options_set_fallback(o, fallback));
  dbrt_session *s = NULL;
  EXPECT_STATUS(want, dbrt_session_create(model, o, &s));
  dbrt_session_options_free(o);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 6) {
    fprintf(stderr, "usage: %s MODEL PAIRS [BACKEND ARTIFACTS MAX_PAIRS]\n", argv[0]);
    return 2;
  }
  size_t count;
  pair_t *pairs = read_pairs(argv[2], &count);
  dbrt_model *model = NULL;
  CHECK(dbrt_model_open(argv[1], strlen(argv[1]), &model));
  size_t labels;
  CHECK(dbrt_model_num_labels(model, &labels));
  dbrt_session *cpu = NULL;
  CHECK(dbrt_session_create(model, NULL, &cpu));
  const char *name = NULL;
  CHECK(dbrt_session_backend(cpu, &name));
  EXPECT(strcmp(name, "cpu") == 0);
  CHECK(dbrt_session_last_backend(cpu, &name));
  EXPECT(strcmp(name, "none") == 0);

  /* Setters and names. */
  dbrt_session_options *o = NULL;
  CHECK(dbrt_session_options_create(&o));
  EXPECT_STATUS(DBRT_UNKNOWN_BACKEND, dbrt_session_options_set_backend(o, "tpu", 3));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_options_set_backend(o, NULL, 3));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_fallback(o, 7));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_artifacts(o, "", 0));
  EXPECT_STATUS(DBRT_OK, dbrt_session_options_set_artifacts(o, NULL, 0));
  const char *bogus = "/nonexistent/libonnxruntime.so";
  CHECK(dbrt_session_options_set_onnxruntime_library(o, bogus, strlen(bogus)));
  char why[256];
  EXPECT_STATUS(DBRT_OK, dbrt_backend_available("cpu", 3, NULL, why, sizeof why));
  EXPECT_STATUS(DBRT_UNKNOWN_BACKEND, dbrt_backend_available("tpu", 3, NULL, why, sizeof why));
  EXPECT_STATUS(DBRT_BACKEND_UNAVAILABLE, dbrt_backend_available("ort-cpu", 7, o, why, sizeof why));
  EXPECT(strstr(why, bogus) != NULL);
  char tiny[8];
  EXPECT_STATUS(DBRT_BACKEND_UNAVAILABLE, dbrt_backend_available("ort-cpu", 7, o, tiny, sizeof tiny));
  EXPECT(strlen(tiny) == sizeof tiny - 1);
  dbrt_session_options_free(o);

  /* A backend that cannot attach: recorded, and the CPU's logits; or refused with NEVER. */
  float *want = malloc(labels * sizeof *want), *got = malloc(labels * sizeof *got);
  const char *p = "A man plays a guitar.", *h = "A person makes music.";
  dbrt_session *absent = session_on(model, "ort-cpu", "/nonexistent/artifacts", DBRT_FALLBACK_ALWAYS, bogus, DBRT_OK);
  CHECK(dbrt_session_backend(absent, &name));
  EXPECT(strcmp(name, "cpu") == 0);
  int32_t kind = -1;
  char message[512];
  CHECK(dbrt_session_last_fallback(absent, &kind, message, sizeof message));
  EXPECT(kind == DBRT_FALLBACK_BACKEND_UNAVAILABLE && strstr(message, bogus) != NULL);
  CHECK(dbrt_session_classify_logits(cpu, p, strlen(p), h, strlen(h), want, labels));
  CHECK(dbrt_session_classify_logits(absent, p, strlen(p), h, strlen(h), got, labels));
  EXPECT(memcmp(want, got, labels * sizeof *got) == 0);
  CHECK(dbrt_session_last_backend(absent, &name));
  EXPECT(strcmp(name, "cpu") == 0);
  dbrt_session_free(absent);
  session_on(model, "ort-cpu", "/nonexistent/artifacts", DBRT_FALLBACK_NEVER, bogus, DBRT_BACKEND_UNAVAILABLE);

  if (argc == 6) {
    const char *backend = argv[3];
    size_t n = (size_t)atoi(argv[5]);
    if (n == 0 || n > count) n = count;
    dbrt_session *dev = session_on(model, backend, argv[4], DBRT_FALLBACK_NEVER, NULL, DBRT_OK);
    CHECK(dbrt_session_backend(dev, &name));
    EXPECT(strcmp(name, backend) == 0);
    size_t agree = 0;
    float max_diff = 0;
    for (size_t i = 0; i < n; i++) {
      const pair_t *q = &pairs[i];
      CHECK(dbrt_session_classify_logits(cpu, q->premise, strlen(q->premise), q->hypothesis, strlen(q->hypothesis),
                                         want, labels));
      CHECK(dbrt_session_classify_logits(dev, q->premise, strlen(q->premise), q->hypothesis, strlen(q->hypothesis),
                                         got, labels));
      CHECK(dbrt_session_last_backend(dev, &name));
      EXPECT(strcmp(name, backend) == 0);
      CHECK(dbrt_session_last_fallback(dev, &kind, NULL, 0));
      EXPECT(kind == DBRT_FALLBACK_NONE);
      size_t a = argmax(want, labels);
      float margin = INFINITY;
      for (size_t k = 0; k < labels; k++) {
        if (k != a && want[a] - want[k] < margin) margin = want[a] - want[k];
        float d = fabsf(want[k] - got[k]);
        if (d > max_diff) max_diff = d;
      }
      if (argmax(got, labels) == a) agree++;
      else EXPECT(margin < MARGIN);
    }
    fprintf(stderr, "offload: %s on %zu pairs: argmax agreement with the CPU %zu/%zu, max |dlogit| %.3g\n", backend,
            n, agree, n, max_diff);
    EXPECT(agree * 100 >= n * 99);
    dbrt_session_free(dev);
  }
  dbrt_session_free(cpu);
  dbrt_model_free(model);
  free(want);
  free(got);
  free_pairs(pairs, count);
  fprintf(stderr, "offload: %d checks passed\n", checks_passed);
  return 0;
}
