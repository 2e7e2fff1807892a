/* Every misuse of the C API returns its status, sets a message, and crashes nothing: NULL
 * handles and pointers, zero-length buffers, invalid UTF-8, bad options, damaged model bytes,
 * a closed session.
 *
 * usage: misuse MODEL.dbrt   (a small model: run.sh uses the tiny v3-style fixture) */
#include "dbrt_test.h"

static const char *P = "A man plays a guitar.", *H = "A person makes music.";

static void expect_message(void) {
  const char *m = dbrt_last_error();
  EXPECT(m != NULL && strlen(m) > 0);
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  EXPECT(f != NULL);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = aligned_alloc(64, (*len + 64) / 64 * 64 + 64);
  EXPECT(fread(buf, 1, *len, f) == *len);
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL\n", argv[0]);
    return 2;
  }
  const char *path = argv[1];
  size_t len;
  unsigned char *bytes = read_file(path, &len);

  /* Statuses and versions. */
  EXPECT(strcmp(dbrt_status_str(DBRT_OK), "DBRT_OK") == 0);
  EXPECT(strcmp(dbrt_status_str(DBRT_BUFFER_TOO_SMALL), "DBRT_BUFFER_TOO_SMALL") == 0);
  EXPECT(strcmp(dbrt_status_str(999), "DBRT_UNKNOWN_STATUS") == 0);
  EXPECT(strcmp(dbrt_status_str(-1), "DBRT_UNKNOWN_STATUS") == 0);
  EXPECT(strlen(dbrt_version()) > 0);

  /* Opening. */
  dbrt_model *model = (dbrt_model *)1;
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_open(NULL, 5, &model));
  EXPECT(model == NULL); /* a failed open leaves NULL behind */
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_open(path, strlen(path), NULL));
  EXPECT_STATUS(DBRT_IO_ERROR, dbrt_model_open("/nonexistent.dbrt", 17, &model));
  EXPECT(model == NULL);
  expect_message();
  EXPECT_STATUS(DBRT_IO_ERROR, dbrt_model_open(path, 0, &model));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_open_read(NULL, 5, &model));
  EXPECT_STATUS(DBRT_IO_ERROR, dbrt_model_open_read("/nonexistent.dbrt", 17, &model));
  EXPECT(model == NULL);
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_open_memory(NULL, 10, &model));
  EXPECT_STATUS(DBRT_NOT_A_MODEL, dbrt_model_open_memory(bytes, 0, &model));
  EXPECT_STATUS(DBRT_TRUNCATED_FILE, dbrt_model_open_memory(bytes, len / 2, &model));
  EXPECT_STATUS(DBRT_NOT_A_MODEL, dbrt_model_open_memory((const uint8_t *)"not a model at all, no", 22, &model));
  EXPECT_STATUS(DBRT_MISALIGNED_BUFFER, dbrt_model_open_memory_borrowed(bytes + 1, len - 1, &model));
  unsigned char saved = bytes[200];
  bytes[200] ^= 0x5a; /* inside the metadata: the tables checksum catches it */
  EXPECT_STATUS(DBRT_CORRUPT_FILE, dbrt_model_open_memory(bytes, len, &model));
  expect_message();
  bytes[200] = saved;
  unsigned char version = bytes[8];
  bytes[8] = 99; /* the major version */
  EXPECT_STATUS(DBRT_UNSUPPORTED_FORMAT, dbrt_model_open_memory(bytes, len, &model));
  bytes[8] = version;
  CHECK(dbrt_model_open_memory(bytes, len, &model));

  /* Model information. */
  size_t n = 0;
  const char *name = NULL;
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_num_labels(NULL, &n));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_num_labels(model, NULL));
  CHECK(dbrt_model_num_labels(model, &n));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_model_label(model, n, &name, NULL));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_label(model, 0, NULL, NULL));
  EXPECT_STATUS(DBRT_NO_ENTAILMENT_LABEL, dbrt_model_entailment_label(model, &n));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_hidden_size(NULL, &n));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_model_weight_type(model, NULL));

  /* Options. */
  dbrt_session_options *options = NULL;
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_options_create(NULL));
  CHECK(dbrt_session_options_create(&options));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_options_set_threads(NULL, 2));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_threads(options, 0));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_threads(options, 100000));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_max_sequence_length(options, 0));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_max_batch(options, 0));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_isa(options, "sse9", 4));
  EXPECT_STATUS(DBRT_INVALID_UTF8, dbrt_session_options_set_isa(options, "\xff\xfe", 2));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_options_set_isa(options, NULL, 0));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_options_set_truncation(options, "middle", 6));
  dbrt_session *session = (dbrt_session *)1;
  /* A tier for the other architecture, then too long a maximum, then a bad entailment label. */
#if defined(__x86_64__)
  CHECK(dbrt_session_options_set_isa(options, "neon", 4));
#else
  CHECK(dbrt_session_options_set_isa(options, "avx2", 4));
#endif
  EXPECT_STATUS(DBRT_UNSUPPORTED_ISA, dbrt_session_create(model, options, &session));
  EXPECT(session == NULL);
  CHECK(dbrt_session_options_set_isa(options, "auto", 4));
  CHECK(dbrt_session_options_set_max_sequence_length(options, 1000000));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_create(model, options, &session));
  CHECK(dbrt_session_options_set_max_sequence_length(options, 8));
  CHECK(dbrt_session_options_set_entailment_label(options, 99));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_create(model, options, &session));
  CHECK(dbrt_session_options_set_entailment_label(options, 0));
  CHECK(dbrt_session_options_set_max_batch(options, 2));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_create(NULL, options, &session));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_create(model, options, NULL));
  CHECK(dbrt_session_create(model, options, &session));
  dbrt_session_options_free(options);

  /* Classification. */
  float probs[16];
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_classify(NULL, P, strlen(P), H, strlen(H), probs, 16));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_classify(session, NULL, 0, H, strlen(H), probs, 16));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_classify(session, P, strlen(P), NULL, 3, probs, 16));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_classify(session, P, strlen(P), H, strlen(H), NULL, 16));
  EXPECT_STATUS(DBRT_BUFFER_TOO_SMALL, dbrt_session_classify(session, P, strlen(P), H, strlen(H), probs, 0));
  EXPECT_STATUS(DBRT_INVALID_UTF8, dbrt_session_classify(session, "caf\xc3", 4, H, strlen(H), probs, 16));
  EXPECT_STATUS(DBRT_INVALID_UTF8, dbrt_session_classify(session, P, strlen(P), "\x80", 1, probs, 16));
  CHECK(dbrt_session_classify(session, P, strlen(P), H, strlen(H), probs, 16));
  CHECK(dbrt_session_classify(session, "", 0, NULL, 0, probs, 16)); /* empty text: [CLS] [SEP] */

  /* Tokenizing. */
  uint32_t ids[64], types[64];
  size_t got = 0;
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_tokenize(session, P, strlen(P), NULL, 0, ids, types, 64, NULL));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_tokenize(session, P, strlen(P), NULL, 0, NULL, types, 64, &got));
  EXPECT_STATUS(DBRT_BUFFER_TOO_SMALL, dbrt_session_tokenize(session, P, strlen(P), H, strlen(H), ids, types, 0, &got));
  EXPECT(got == 8); /* truncated to the session's 8 tokens */
  expect_message();
  CHECK(dbrt_session_tokenize(session, P, strlen(P), H, strlen(H), ids, types, 8, &got));

  /* Raw ids. */
  float logits[16], hidden[8 * 1024];
  uint32_t bad[2] = {1, 4000000000u};
  uint32_t long_ids[9] = {1, 5, 5, 5, 5, 5, 5, 5, 2};
  EXPECT_STATUS(DBRT_EMPTY_INPUT, dbrt_session_run_logits(session, ids, NULL, 0, logits, 16));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_run_logits(session, NULL, NULL, 3, logits, 16));
  EXPECT_STATUS(DBRT_INVALID_TOKEN, dbrt_session_run_logits(session, bad, NULL, 2, logits, 16));
  EXPECT_STATUS(DBRT_INPUT_TOO_LONG, dbrt_session_run_logits(session, long_ids, NULL, 9, logits, 16));
  EXPECT_STATUS(DBRT_BUFFER_TOO_SMALL, dbrt_session_run_hidden(session, ids, NULL, got, hidden, 1));
  CHECK(dbrt_session_run_hidden(session, ids, NULL, got, hidden, 8 * 1024));
  CHECK(dbrt_session_run_logits(session, ids, NULL, got, logits, 16));

  /* Batches. */
  dbrt_str texts[3] = {{P, strlen(P)}, {H, strlen(H)}, {P, strlen(P)}};
  dbrt_str broken[2] = {{P, strlen(P)}, {"\xff", 1}};
  dbrt_str null_entry[2] = {{P, strlen(P)}, {NULL, 0}};
  float batch[48];
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_classify_batch(session, texts, NULL, 0, batch, 48));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_classify_batch(session, NULL, NULL, 2, batch, 48));
  EXPECT_STATUS(DBRT_BATCH_TOO_LARGE, dbrt_session_classify_batch(session, texts, NULL, 3, batch, 48));
  EXPECT_STATUS(DBRT_INVALID_UTF8, dbrt_session_classify_batch(session, broken, NULL, 2, batch, 48));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_classify_batch(session, null_entry, NULL, 2, batch, 48));
  EXPECT_STATUS(DBRT_BUFFER_TOO_SMALL, dbrt_session_classify_batch(session, texts, texts, 2, batch, 1));
  CHECK(dbrt_session_classify_batch(session, texts, texts, 2, batch, 48));

  /* Zero-shot. */
  dbrt_str candidates[2] = {{"sports", 6}, {"music", 5}};
  float scores[2];
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_classify_zero_shot(session, P, strlen(P), candidates, 0, NULL, 0, 0, scores, 2));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_session_classify_zero_shot(session, P, strlen(P), candidates, 2, "no slot", 7, 0, scores, 2));
  EXPECT_STATUS(DBRT_BUFFER_TOO_SMALL, dbrt_session_classify_zero_shot(session, P, strlen(P), candidates, 2, NULL, 0, 0, scores, 1));
  EXPECT_STATUS(DBRT_INVALID_UTF8, dbrt_session_classify_zero_shot(session, P, strlen(P), broken, 2, NULL, 0, 0, scores, 2));
  CHECK(dbrt_session_classify_zero_shot(session, P, strlen(P), candidates, 2, NULL, 0, 0, scores, 2));
  dbrt_session *unnamed = NULL;
  CHECK(dbrt_session_create(model, NULL, &unnamed)); /* no entailment label set, none named */
  EXPECT_STATUS(DBRT_NO_ENTAILMENT_LABEL, dbrt_session_classify_zero_shot(unnamed, P, strlen(P), candidates, 2, NULL, 0, 0, scores, 2));
  dbrt_session_free(unnamed);

  /* A closed session answers every call with DBRT_SESSION_CLOSED; closing twice is fine. */
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_close(NULL));
  CHECK(dbrt_session_close(session));
  CHECK(dbrt_session_close(session));
  const char *isa;
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_isa(session, &isa));
  size_t threads;
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_threads(session, &threads));
  EXPECT_STATUS(DBRT_NULL_POINTER, dbrt_session_threads(NULL, &threads));
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_classify(session, P, strlen(P), H, strlen(H), probs, 16));
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_tokenize(session, P, strlen(P), NULL, 0, ids, NULL, 64, &got));
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_run_logits(session, ids, NULL, 3, logits, 16));
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_classify_batch(session, texts, NULL, 1, batch, 48));
  EXPECT_STATUS(DBRT_SESSION_CLOSED, dbrt_session_classify_zero_shot(session, P, strlen(P), candidates, 2, NULL, 0, 0, scores, 2));
  dbrt_session_free(session);

  /* Every free takes NULL. */
  dbrt_session_free(NULL);
  dbrt_session_options_free(NULL);
  dbrt_model_free(NULL);
  dbrt_model_free(model);
  free(bytes);
  fprintf(stderr, "misuse: %d checks passed\n", checks_passed);
  return 0;
}
