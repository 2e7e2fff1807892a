/* One model shared by four threads, each with its own session: every thread classifies every
 * pair and must get, bit for bit, the logits a single session got first.
 *
 * usage: threads MODEL.dbrt PAIRS.tsv */
#include <pthread.h>

#include "dbrt_test.h"

#define THREADS 4

static dbrt_model *model;
static pair_t *pairs;
static size_t count, labels;
static float *reference;
/* Workers pass it once their session exists; then main drops its model reference. */
static pthread_barrier_t sessions_created;

static void classify_all(dbrt_session *session, float *out) {
  for (size_t i = 0; i < count; i++) {
    const char *p = pairs[i].premise, *h = pairs[i].hypothesis;
    CHECK(dbrt_session_classify_logits(session, p, strlen(p), h, strlen(h), out + i * labels,
                                       labels));
  }
}

static void *worker(void *arg) {
  size_t id = (size_t)arg;
  dbrt_session_options *options = NULL;
  CHECK(dbrt_session_options_create(&options));
  /* Half the sessions run two threads each: results must not depend on it. */
  CHECK(dbrt_session_options_set_threads(options, 1 + id % 2));
  dbrt_session *session = NULL;
  CHECK(dbrt_session_create(model, options, &session));
  dbrt_session_options_free(options);
  pthread_barrier_wait(&sessions_created);
  float *mine = malloc(count * labels * sizeof *mine);
  classify_all(session, mine);
  int same = memcmp(mine, reference, count * labels * sizeof *mine) == 0;
  free(mine);
  dbrt_session_free(session);
  return (void *)(size_t)same;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL PAIRS\n", argv[0]);
    return 2;
  }
  pairs = read_pairs(argv[2], &count);
  CHECK(dbrt_model_open(argv[1], strlen(argv[1]), &model));
  CHECK(dbrt_model_num_labels(model, &labels));
  reference = malloc(count * labels * sizeof *reference);
  dbrt_session *session = NULL;
  CHECK(dbrt_session_create(model, NULL, &session));
  classify_all(session, reference);
  dbrt_session_free(session);

  pthread_t threads[THREADS];
  EXPECT(pthread_barrier_init(&sessions_created, NULL, THREADS + 1) == 0);
  for (size_t t = 0; t < THREADS; t++) EXPECT(pthread_create(&threads[t], NULL, worker, (void *)t) == 0);
  /* The caller's reference may go while the sessions still run: they hold their own. */
  pthread_barrier_wait(&sessions_created);
  dbrt_model_free(model);
  for (size_t t = 0; t < THREADS; t++) {
    void *same;
    EXPECT(pthread_join(threads[t], &same) == 0);
    EXPECT(same == (void *)1);
  }
  free(reference);
  free_pairs(pairs, count);
  fprintf(stderr, "threads: %d threads x %zu pairs identical to one session\n", THREADS, count);
  return 0;
}
