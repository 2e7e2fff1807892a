/* Test-only JNI, linked into the host build of libdbrt_jni.so by build.sh (never into an app's):
 * creates a session on a native thread the JVM does not know, whose warning ("backend ort-cpu
 * did not attach") takes the glue's path for such threads: attached to the JVM for the message,
 * detached when the thread exits. Returns the session's status. */
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "dbrt.h"

typedef struct {
  dbrt_model *model;
  dbrt_status status;
} job_t;

static void *create_session_that_warns(void *arg) {
  job_t *job = arg;
  const char *backend = "ort-cpu", *library = "/nonexistent/libonnxruntime.so";
  dbrt_session_options *o = NULL;
  job->status = dbrt_session_options_create(&o);
  if (job->status != DBRT_OK) return NULL;
  dbrt_session_options_set_backend(o, backend, strlen(backend));
  dbrt_session_options_set_onnxruntime_library(o, library, strlen(library));
  dbrt_session *s = NULL;
  job->status = dbrt_session_create(job->model, o, &s);
  dbrt_session_options_free(o);
  dbrt_session_free(s);
  return NULL;
}

JNIEXPORT jint JNICALL Java_org_dbrt_LogTest_warnOnNativeThread(JNIEnv *env, jclass cls, jlong model) {
  (void)env;
  (void)cls;
  job_t job = {(dbrt_model *)(intptr_t)model, DBRT_INTERNAL_ERROR};
  pthread_t thread;
  if (pthread_create(&thread, NULL, create_session_that_warns, &job) != 0) return -1;
  pthread_join(thread, NULL);
  return (jint)job.status;
}
