/* The log callback: dbrt's messages reach the host's function with their level and text, the
 * threshold filters them, and after unsetting (NULL) nothing arrives. The message logged: a
 * session on a backend that cannot attach (onnxruntime at a path that does not exist) warns that
 * it runs on the CPU.
 *
 * usage: log_callback MODEL.dbrt */
#include "dbrt_test.h"

typedef struct {
  int calls;     /* every message (the first session also says which kernels it uses, at info) */
  int warnings;  /* messages at DBRT_LOG_WARN, the last one's text in text */
  int32_t worst; /* the most severe level seen */
  char text[1024];
} seen_t;

static void on_log(int32_t level, const char *message, void *user) {
  seen_t *seen = user;
  seen->calls++;
  if (seen->worst == 0 || level < seen->worst) seen->worst = level;
  if (level == DBRT_LOG_WARN) {
    seen->warnings++;
    snprintf(seen->text, sizeof seen->text, "%s", message);
  }
  if (getenv("LOG_CALLBACK_VERBOSE")) fprintf(stderr, "[%d] %s\n", level, message);
}

/* Creates and frees a session whose backend cannot attach (it falls back to the CPU). */
static void session_that_warns(dbrt_model *model) {
  const char *backend = "ort-cpu", *library = "/nonexistent/libonnxruntime.so";
  dbrt_session_options *o = NULL;
  CHECK(dbrt_session_options_create(&o));
  CHECK(dbrt_session_options_set_backend(o, backend, strlen(backend)));
  CHECK(dbrt_session_options_set_onnxruntime_library(o, library, strlen(library)));
  CHECK(dbrt_session_options_set_fallback(o, DBRT_FALLBACK_ALWAYS));
  dbrt_session *s = NULL;
  CHECK(dbrt_session_create(model, o, &s));
  dbrt_session_options_free(o);
  dbrt_session_free(s);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL\n", argv[0]);
    return 2;
  }
  dbrt_model *model = NULL;
  CHECK(dbrt_model_open(argv[1], strlen(argv[1]), &model));
  seen_t seen = {0};

  /* No callback (the default): the warning is dropped, nothing crashes. */
  session_that_warns(model);

  CHECK(dbrt_set_log_callback(on_log, &seen));
  session_that_warns(model);
  EXPECT(seen.warnings == 1);
  EXPECT(seen.worst == DBRT_LOG_WARN);
  EXPECT(strstr(seen.text, "backend ort-cpu did not attach, running on the CPU") != NULL);
  EXPECT(strstr(seen.text, "/nonexistent/libonnxruntime.so") != NULL);

  /* Above the threshold: filtered. */
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_set_log_level(6));
  EXPECT_STATUS(DBRT_INVALID_ARGUMENT, dbrt_set_log_level(-1));
  CHECK(dbrt_set_log_level(DBRT_LOG_ERROR));
  int calls = seen.calls;
  session_that_warns(model);
  EXPECT(seen.calls == calls);
  CHECK(dbrt_set_log_level(DBRT_LOG_TRACE));
  session_that_warns(model);
  EXPECT(seen.warnings == 2 && seen.worst == DBRT_LOG_WARN);

  /* Unset: dropped again. */
  int before = seen.calls;
  CHECK(dbrt_set_log_callback(NULL, NULL));
  session_that_warns(model);
  EXPECT(seen.calls == before);

  dbrt_model_free(model);
  printf("log_callback: %d checks passed\n", checks_passed);
  return 0;
}
