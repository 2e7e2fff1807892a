/* Classifies every pair of a pairs file through the C API and writes one line of logits per
 * pair ("%.9g" each, tab-separated), for run.sh to compare with the Rust CLI's. On the way it
 * checks that the API's routes agree: tokenize + run_logits, classify_logits, classify
 * (probabilities = softmax of the logits) and classify_batch give the same numbers.
 *
 * usage: classify_pairs MODEL.dbrt PAIRS.tsv OUT.txt [THREADS] */
#include <math.h>

#include "dbrt_test.h"

#define BATCH 8
/* The probability and batch routes are checked on the first pairs only: each is another
 * forward pass per pair. */
#define ROUTE_PAIRS 256

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL PAIRS OUT [THREADS]\n", argv[0]);
    return 2;
  }
  size_t count;
  pair_t *pairs = read_pairs(argv[2], &count);
  FILE *out = fopen(argv[3], "w");
  if (!out) {
    perror(argv[3]);
    return 1;
  }
  EXPECT(dbrt_api_version() == DBRT_API_VERSION);

  dbrt_model *model = NULL;
  CHECK(dbrt_model_open(argv[1], strlen(argv[1]), &model));
  size_t labels, max_len;
  CHECK(dbrt_model_num_labels(model, &labels));
  CHECK(dbrt_model_max_sequence_length(model, &max_len));
  EXPECT(labels >= 1 && labels <= 16);

  dbrt_session_options *options = NULL;
  CHECK(dbrt_session_options_create(&options));
  CHECK(dbrt_session_options_set_threads(options, argc > 4 ? (size_t)atoi(argv[4]) : 1));
  CHECK(dbrt_session_options_set_max_batch(options, BATCH));
  dbrt_session *session = NULL;
  CHECK(dbrt_session_create(model, options, &session));
  dbrt_session_options_free(options);
  const char *isa;
  CHECK(dbrt_session_isa(session, &isa));
  fprintf(stderr, "classify_pairs: %zu pairs, %zu labels, kernels %s\n", count, labels, isa);

  uint32_t *ids = malloc(max_len * sizeof *ids);
  float *probs = malloc(ROUTE_PAIRS * labels * sizeof *probs);
  for (size_t i = 0; i < count; i++) {
    const char *p = pairs[i].premise, *h = pairs[i].hypothesis;
    /* Tokenize twice: with no room (the size needed comes back), then with exactly that. */
    size_t n = 0;
    EXPECT_STATUS(DBRT_BUFFER_TOO_SMALL,
                  dbrt_session_tokenize(session, p, strlen(p), h, strlen(h), ids, NULL, 0, &n));
    EXPECT(n >= 3 && n <= max_len);
    size_t got = 0;
    CHECK(dbrt_session_tokenize(session, p, strlen(p), h, strlen(h), ids, NULL, n, &got));
    EXPECT(got == n);

    float from_ids[16], logits[16];
    CHECK(dbrt_session_run_logits(session, ids, NULL, n, from_ids, labels));
    CHECK(dbrt_session_classify_logits(session, p, strlen(p), h, strlen(h), logits, labels));
    EXPECT(memcmp(from_ids, logits, labels * sizeof(float)) == 0);
    for (size_t k = 0; k < labels; k++) fprintf(out, k ? "\t%.9g" : "%.9g", logits[k]);
    fputc('\n', out);
    if (i >= ROUTE_PAIRS) continue;

    CHECK(dbrt_session_classify(session, p, strlen(p), h, strlen(h), probs + i * labels, labels));
    float max = logits[0], sum = 0;
    for (size_t k = 1; k < labels; k++) max = logits[k] > max ? logits[k] : max;
    for (size_t k = 0; k < labels; k++) sum += expf(logits[k] - max);
    for (size_t k = 0; k < labels; k++) {
      float want = expf(logits[k] - max) / sum;
      EXPECT(fabsf(probs[i * labels + k] - want) < 1e-6f);
    }
  }

  /* The batch call gives bit for bit what the single calls gave. */
  dbrt_str texts[BATCH], hyps[BATCH];
  float batch_probs[BATCH * 16];
  size_t routed = count < ROUTE_PAIRS ? count : ROUTE_PAIRS;
  for (size_t start = 0; start < routed; start += BATCH) {
    size_t b = routed - start < BATCH ? routed - start : BATCH;
    for (size_t j = 0; j < b; j++) {
      texts[j] = (dbrt_str){pairs[start + j].premise, strlen(pairs[start + j].premise)};
      hyps[j] = (dbrt_str){pairs[start + j].hypothesis, strlen(pairs[start + j].hypothesis)};
    }
    CHECK(dbrt_session_classify_batch(session, texts, hyps, b, batch_probs, BATCH * 16));
    EXPECT(memcmp(batch_probs, probs + start * labels, b * labels * sizeof(float)) == 0);
  }

  fclose(out);
  free(ids);
  free(probs);
  dbrt_session_free(session);
  dbrt_model_free(model);
  free_pairs(pairs, count);
  fprintf(stderr, "classify_pairs: %d checks passed\n", checks_passed);
  return 0;
}
