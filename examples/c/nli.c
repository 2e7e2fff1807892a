/* The smallest dbrt app: classify one premise / hypothesis pair.
 *
 * Build (from the repository root, after `cargo build --release -p dbrt-ffi`):
 *   cc -O2 -I include examples/c/nli.c target/release/libdbrt.a -lpthread -ldl -lm -Wl,--gc-sections -o nli
 * Run:
 *   ./nli models/aegis-nli-xsmall.dbrt "A man plays a guitar." "A person makes music." */
#include <stdio.h>
#include <string.h>

#include "dbrt.h"

static int fail(const char *what, dbrt_status status) {
  fprintf(stderr, "%s: %s: %s\n", what, dbrt_status_str(status), dbrt_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL.dbrt PREMISE HYPOTHESIS\n", argv[0]);
    return 2;
  }
  const char *path = argv[1], *premise = argv[2], *hypothesis = argv[3];

  dbrt_model *model = NULL;
  dbrt_status s = dbrt_model_open(path, strlen(path), &model);
  if (s != DBRT_OK) return fail(path, s);

  dbrt_session *session = NULL; /* NULL options: one thread, the model's maximum length */
  s = dbrt_session_create(model, NULL, &session);
  if (s != DBRT_OK) return fail("session", s);

  float probs[16];
  s = dbrt_session_classify(session, premise, strlen(premise), hypothesis, strlen(hypothesis), probs, 16);
  if (s != DBRT_OK) return fail("classify", s);

  size_t labels = 0;
  dbrt_model_num_labels(model, &labels);
  for (size_t i = 0; i < labels; i++) {
    const char *name = "?";
    dbrt_model_label(model, i, &name, NULL);
    printf("%-16s %.4f\n", name, probs[i]);
  }
  dbrt_session_free(session);
  dbrt_model_free(model);
  return 0;
}
