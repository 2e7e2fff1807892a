/* JNI glue between org.dbrt.Native and libdbrt's C API (include/dbrt.h). The same file builds
 * for the host JVM (bindings/java/build.sh) and for Android with the NDK (README.md there).
 *
 * Strings arrive as UTF-8 byte arrays; libdbrt validates them. A failed call throws
 * org.dbrt.DbrtException(status, name, message) and returns a zero value the Java side
 * ignores. Handles cross as jlong. */
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbrt.h"

static void throw_status(JNIEnv *env, dbrt_status status) {
  jclass cls = (*env)->FindClass(env, "org/dbrt/DbrtException");
  if (!cls) return; /* NoClassDefFoundError is pending */
  jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;Ljava/lang/String;)V");
  if (!ctor) return;
  jstring name = (*env)->NewStringUTF(env, dbrt_status_str(status));
  /* The message is ASCII or UTF-8 of our own making; NewStringUTF takes it. */
  jstring message = (*env)->NewStringUTF(env, dbrt_last_error());
  if (!name || !message) return;
  jobject e = (*env)->NewObject(env, cls, ctor, (jint)status, name, message);
  if (e) (*env)->Throw(env, (jthrowable)e);
}

/* Returns 1 on DBRT_OK; otherwise throws and returns 0. */
static int ok(JNIEnv *env, dbrt_status status) {
  if (status == DBRT_OK) return 1;
  throw_status(env, status);
  return 0;
}

static void throw_java(JNIEnv *env, const char *cls_name, const char *message) {
  jclass cls = (*env)->FindClass(env, cls_name);
  if (cls) (*env)->ThrowNew(env, cls, message);
}

/* A byte[] borrowed for one call (NULL array: absent). */
typedef struct {
  jbyteArray array;
  jbyte *bytes;
  size_t len;
} utf8_t;

static int borrow(JNIEnv *env, jbyteArray array, utf8_t *out) {
  out->array = array;
  out->bytes = NULL;
  out->len = 0;
  if (!array) return 1;
  out->len = (size_t)(*env)->GetArrayLength(env, array);
  out->bytes = (*env)->GetByteArrayElements(env, array, NULL);
  return out->bytes != NULL; /* OutOfMemoryError is pending otherwise */
}

static void give_back(JNIEnv *env, utf8_t *u) {
  if (u->bytes) (*env)->ReleaseByteArrayElements(env, u->array, u->bytes, JNI_ABORT);
  u->bytes = NULL;
}

/* An empty Java array may yield a pointer libdbrt would still accept; a NULL one never does. */
static const char *chars(const utf8_t *u) {
  static const char empty = 0;
  return u->array ? (u->bytes ? (const char *)u->bytes : &empty) : NULL;
}

JNIEXPORT jstring JNICALL Java_org_dbrt_Native_version(JNIEnv *env, jclass cls) {
  (void)cls;
  return (*env)->NewStringUTF(env, dbrt_version());
}

/* The log callback. dbrt calls it on the calling Java thread and on its own worker threads.
 * Choice: forward from every thread, attaching a native thread to the JVM (as a daemon, so it
 * never holds the JVM open) on its first message and detaching it when the thread exits, through
 * a pthread key's destructor (Android's JNI tips; a thread that exits attached aborts ART). The
 * alternative, forwarding only from Java threads, would drop what worker threads report, e.g. a
 * caught bug. The statics change only in setLogger (serialized by Dbrt.setLogger's lock) and
 * only while no callback is set: dbrt_set_log_callback(NULL) returns once none is running. */
static JavaVM *log_vm;
static jclass log_dbrt_class;   /* org.dbrt.Dbrt, found on a Java thread (the class loader) */
static jmethodID log_deliver;   /* Dbrt.deliver(Logger, int, byte[]) */
static jobject log_target;      /* the Java Logger */
static pthread_key_t log_detach_key;
static pthread_once_t log_key_once = PTHREAD_ONCE_INIT;

static void detach_on_exit(void *value) {
  (void)value;
  (*log_vm)->DetachCurrentThread(log_vm);
}

static void make_detach_key(void) { pthread_key_create(&log_detach_key, detach_on_exit); }

static void forward_log(int32_t level, const char *message, void *user) {
  (void)user;
  JNIEnv *env = NULL;
  jint got = (*log_vm)->GetEnv(log_vm, (void **)&env, JNI_VERSION_1_6);
  if (got == JNI_EDETACHED) {
    if ((*log_vm)->AttachCurrentThreadAsDaemon(log_vm, (void **)&env, NULL) != JNI_OK) return;
    pthread_setspecific(log_detach_key, env); /* non-NULL: the destructor runs at exit */
  } else if (got != JNI_OK) {
    return;
  }
  /* No Java call is allowed while an exception is pending on this thread: drop the message. */
  if ((*env)->ExceptionCheck(env)) return;
  jsize len = (jsize)strlen(message);
  jbyteArray bytes = (*env)->NewByteArray(env, len);
  if (bytes) {
    (*env)->SetByteArrayRegion(env, bytes, 0, len, (const jbyte *)message);
    (*env)->CallStaticVoidMethod(env, log_dbrt_class, log_deliver, log_target, (jint)level, bytes);
    (*env)->DeleteLocalRef(env, bytes);
  }
  /* Dbrt.deliver catches the logger's throwables; this catches an OutOfMemoryError on the way. */
  if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env);
}

JNIEXPORT void JNICALL Java_org_dbrt_Native_setLogger(JNIEnv *env, jclass cls, jobject logger, jint max_level) {
  (void)cls;
  if (!ok(env, dbrt_set_log_level(max_level))) return;
  /* First no callback: when this returns, none is running and the old logger can go. */
  if (!ok(env, dbrt_set_log_callback(NULL, NULL))) return;
  if (log_target) {
    (*env)->DeleteGlobalRef(env, log_target);
    log_target = NULL;
  }
  if (!logger) return;
  if (!log_vm && (*env)->GetJavaVM(env, &log_vm) != JNI_OK) {
    throw_java(env, "java/lang/IllegalStateException", "GetJavaVM failed");
    return;
  }
  pthread_once(&log_key_once, make_detach_key);
  if (!log_dbrt_class) {
    jclass dbrt = (*env)->FindClass(env, "org/dbrt/Dbrt");
    if (!dbrt) return; /* NoClassDefFoundError is pending */
    log_deliver = (*env)->GetStaticMethodID(env, dbrt, "deliver", "(Lorg/dbrt/Dbrt$Logger;I[B)V");
    if (!log_deliver) return;
    log_dbrt_class = (*env)->NewGlobalRef(env, dbrt);
    if (!log_dbrt_class) return;
  }
  log_target = (*env)->NewGlobalRef(env, logger);
  if (!log_target) return;
  ok(env, dbrt_set_log_callback(forward_log, NULL));
}

JNIEXPORT jlong JNICALL Java_org_dbrt_Native_modelOpen(JNIEnv *env, jclass cls, jbyteArray path) {
  (void)cls;
  utf8_t p;
  if (!path) {
    throw_java(env, "java/lang/NullPointerException", "path");
    return 0;
  }
  if (!borrow(env, path, &p)) return 0;
  dbrt_model *model = NULL;
  dbrt_status s = dbrt_model_open(chars(&p), p.len, &model);
  give_back(env, &p);
  return ok(env, s) ? (jlong)(intptr_t)model : 0;
}

JNIEXPORT jlong JNICALL Java_org_dbrt_Native_modelOpenBytes(JNIEnv *env, jclass cls, jbyteArray data) {
  (void)cls;
  utf8_t d;
  if (!data) {
    throw_java(env, "java/lang/NullPointerException", "data");
    return 0;
  }
  if (!borrow(env, data, &d)) return 0;
  dbrt_model *model = NULL;
  dbrt_status s = dbrt_model_open_memory((const uint8_t *)chars(&d), d.len, &model);
  give_back(env, &d);
  return ok(env, s) ? (jlong)(intptr_t)model : 0;
}

JNIEXPORT void JNICALL Java_org_dbrt_Native_modelFree(JNIEnv *env, jclass cls, jlong model) {
  (void)env;
  (void)cls;
  dbrt_model_free((dbrt_model *)(intptr_t)model);
}

JNIEXPORT jobjectArray JNICALL Java_org_dbrt_Native_modelLabels(JNIEnv *env, jclass cls, jlong handle) {
  (void)cls;
  const dbrt_model *model = (const dbrt_model *)(intptr_t)handle;
  size_t n;
  if (!ok(env, dbrt_model_num_labels(model, &n))) return NULL;
  jclass bytes_cls = (*env)->FindClass(env, "[B");
  if (!bytes_cls) return NULL;
  jobjectArray out = (*env)->NewObjectArray(env, (jsize)n, bytes_cls, NULL);
  for (size_t i = 0; out && i < n; i++) {
    const char *name;
    size_t len;
    if (!ok(env, dbrt_model_label(model, i, &name, &len))) return NULL;
    jbyteArray b = (*env)->NewByteArray(env, (jsize)len);
    if (!b) return NULL;
    (*env)->SetByteArrayRegion(env, b, 0, (jsize)len, (const jbyte *)name);
    (*env)->SetObjectArrayElement(env, out, (jsize)i, b);
    (*env)->DeleteLocalRef(env, b);
  }
  return out;
}

JNIEXPORT jint JNICALL Java_org_dbrt_Native_modelMaxSequenceLength(JNIEnv *env, jclass cls, jlong model) {
  (void)cls;
  size_t n = 0;
  return ok(env, dbrt_model_max_sequence_length((const dbrt_model *)(intptr_t)model, &n)) ? (jint)n : 0;
}

/* Sets an optional string option from a byte[] (NULL: left at its default). */
static dbrt_status set_text(JNIEnv *env, dbrt_session_options *options, jbyteArray value,
                            dbrt_status (*setter)(dbrt_session_options *, const char *, size_t)) {
  utf8_t v;
  if (!value) return DBRT_OK;
  if (!borrow(env, value, &v)) return DBRT_OUT_OF_MEMORY;
  dbrt_status s = setter(options, chars(&v), v.len);
  give_back(env, &v);
  return s;
}

JNIEXPORT jlong JNICALL Java_org_dbrt_Native_sessionCreate(JNIEnv *env, jclass cls, jlong model,
                                                          jint threads, jint max_len, jint entailment,
                                                          jbyteArray backend, jbyteArray artifacts,
                                                          jint fallback, jbyteArray ort_lib,
                                                          jbyteArray qnn_lib) {
  (void)cls;
  dbrt_session_options *options = NULL;
  dbrt_session *session = NULL;
  dbrt_status s = dbrt_session_options_create(&options);
  if (s == DBRT_OK && threads > 0) s = dbrt_session_options_set_threads(options, (size_t)threads);
  if (s == DBRT_OK && max_len > 0) s = dbrt_session_options_set_max_sequence_length(options, (size_t)max_len);
  if (s == DBRT_OK && entailment >= 0) s = dbrt_session_options_set_entailment_label(options, (size_t)entailment);
  if (s == DBRT_OK) s = set_text(env, options, backend, dbrt_session_options_set_backend);
  if (s == DBRT_OK) s = set_text(env, options, artifacts, dbrt_session_options_set_artifacts);
  if (s == DBRT_OK) s = dbrt_session_options_set_fallback(options, fallback);
  if (s == DBRT_OK) s = set_text(env, options, ort_lib, dbrt_session_options_set_onnxruntime_library);
  if (s == DBRT_OK) s = set_text(env, options, qnn_lib, dbrt_session_options_set_qnn_library);
  if (s == DBRT_OK) s = dbrt_session_create((const dbrt_model *)(intptr_t)model, options, &session);
  dbrt_session_options_free(options);
  if ((*env)->ExceptionCheck(env)) return 0; /* OutOfMemoryError from borrowing */
  return ok(env, s) ? (jlong)(intptr_t)session : 0;
}

JNIEXPORT jstring JNICALL Java_org_dbrt_Native_backendUnavailableReason(JNIEnv *env, jclass cls, jbyteArray name,
                                                                       jbyteArray ort_lib, jbyteArray qnn_lib) {
  (void)cls;
  utf8_t n;
  if (!name) {
    throw_java(env, "java/lang/NullPointerException", "name");
    return NULL;
  }
  dbrt_session_options *options = NULL;
  dbrt_status s = dbrt_session_options_create(&options);
  if (s == DBRT_OK) s = set_text(env, options, ort_lib, dbrt_session_options_set_onnxruntime_library);
  if (s == DBRT_OK) s = set_text(env, options, qnn_lib, dbrt_session_options_set_qnn_library);
  char why[512] = {0};
  if (s == DBRT_OK) {
    if (!borrow(env, name, &n)) {
      dbrt_session_options_free(options);
      return NULL;
    }
    s = dbrt_backend_available(chars(&n), n.len, options, why, sizeof why);
    give_back(env, &n);
  }
  dbrt_session_options_free(options);
  if ((*env)->ExceptionCheck(env)) return NULL;
  if (s == DBRT_OK) return NULL;
  if (s == DBRT_BACKEND_UNAVAILABLE) return (*env)->NewStringUTF(env, why);
  ok(env, s);
  return NULL;
}

JNIEXPORT jstring JNICALL Java_org_dbrt_Native_sessionBackend(JNIEnv *env, jclass cls, jlong session,
                                                             jboolean last) {
  (void)cls;
  const char *name = NULL;
  dbrt_session *s_ = (dbrt_session *)(intptr_t)session;
  if (!ok(env, last ? dbrt_session_last_backend(s_, &name) : dbrt_session_backend(s_, &name))) return NULL;
  return (*env)->NewStringUTF(env, name);
}

JNIEXPORT jstring JNICALL Java_org_dbrt_Native_sessionLastFallback(JNIEnv *env, jclass cls, jlong session) {
  (void)cls;
  static const char *const kinds[] = {"none", "backend unavailable", "invalid artifacts",
                                      "input longer than the largest bucket", "device error"};
  int32_t kind = 0;
  char message[512] = {0};
  if (!ok(env, dbrt_session_last_fallback((dbrt_session *)(intptr_t)session, &kind, message, sizeof message)))
    return NULL;
  if (kind <= 0 || kind > 4) return NULL;
  char text[600];
  snprintf(text, sizeof text, "%s: %s", kinds[kind], message);
  return (*env)->NewStringUTF(env, text);
}

JNIEXPORT void JNICALL Java_org_dbrt_Native_sessionFree(JNIEnv *env, jclass cls, jlong session) {
  (void)env;
  (void)cls;
  dbrt_session_free((dbrt_session *)(intptr_t)session);
}

JNIEXPORT jstring JNICALL Java_org_dbrt_Native_sessionIsa(JNIEnv *env, jclass cls, jlong session) {
  (void)cls;
  const char *name = NULL;
  if (!ok(env, dbrt_session_isa((dbrt_session *)(intptr_t)session, &name))) return NULL;
  return (*env)->NewStringUTF(env, name);
}

JNIEXPORT jint JNICALL Java_org_dbrt_Native_tokenize(JNIEnv *env, jclass cls, jlong session,
                                                    jbyteArray text, jbyteArray pair, jintArray ids) {
  (void)cls;
  utf8_t t, p;
  if (!borrow(env, text, &t)) return 0;
  if (!borrow(env, pair, &p)) {
    give_back(env, &t);
    return 0;
  }
  jsize cap = ids ? (*env)->GetArrayLength(env, ids) : 0;
  jint *out = ids ? (*env)->GetIntArrayElements(env, ids, NULL) : NULL;
  size_t n = 0;
  /* jint and uint32_t have the same size; ids are below 2^31. */
  dbrt_status s = dbrt_session_tokenize((dbrt_session *)(intptr_t)session, chars(&t), t.len, chars(&p),
                                        p.len, (uint32_t *)out, NULL, (size_t)cap, &n);
  if (out) (*env)->ReleaseIntArrayElements(env, ids, out, s == DBRT_OK ? 0 : JNI_ABORT);
  give_back(env, &t);
  give_back(env, &p);
  if (s == DBRT_BUFFER_TOO_SMALL) return (jint)n; /* the caller retries with room for n */
  return ok(env, s) ? (jint)n : 0;
}

JNIEXPORT void JNICALL Java_org_dbrt_Native_classify(JNIEnv *env, jclass cls, jlong session,
                                                    jbyteArray text, jbyteArray pair, jfloatArray out,
                                                    jboolean logits) {
  (void)cls;
  utf8_t t, p;
  if (!borrow(env, text, &t)) return;
  if (!borrow(env, pair, &p)) {
    give_back(env, &t);
    return;
  }
  jsize cap = (*env)->GetArrayLength(env, out);
  jfloat *o = (*env)->GetFloatArrayElements(env, out, NULL);
  dbrt_session *s_ = (dbrt_session *)(intptr_t)session;
  dbrt_status s = logits ? dbrt_session_classify_logits(s_, chars(&t), t.len, chars(&p), p.len, o, (size_t)cap)
                         : dbrt_session_classify(s_, chars(&t), t.len, chars(&p), p.len, o, (size_t)cap);
  if (o) (*env)->ReleaseFloatArrayElements(env, out, o, s == DBRT_OK ? 0 : JNI_ABORT);
  give_back(env, &t);
  give_back(env, &p);
  ok(env, s);
}

JNIEXPORT void JNICALL Java_org_dbrt_Native_classifyZeroShot(JNIEnv *env, jclass cls, jlong session, jbyteArray text,
                                                            jobjectArray labels, jbyteArray template_,
                                                            jboolean multi_label, jfloatArray out) {
  (void)cls;
  jsize n = (*env)->GetArrayLength(env, labels);
  utf8_t t, tpl;
  utf8_t *borrowed = calloc((size_t)n + 1, sizeof *borrowed);
  dbrt_str *strs = calloc((size_t)n + 1, sizeof *strs);
  if (!borrowed || !strs) throw_java(env, "java/lang/OutOfMemoryError", "zero-shot labels");
  int have_t = borrowed && strs && borrow(env, text, &t);
  int have_tpl = have_t && borrow(env, template_, &tpl);
  int fine = have_t && have_tpl;
  jsize got = 0;
  for (; fine && got < n; got++) {
    jbyteArray label = (jbyteArray)(*env)->GetObjectArrayElement(env, labels, got);
    if (!label || !borrow(env, label, &borrowed[got])) {
      if (label) (*env)->DeleteLocalRef(env, label);
      else throw_java(env, "java/lang/NullPointerException", "a candidate label");
      fine = 0;
      break;
    }
    strs[got] = (dbrt_str){chars(&borrowed[got]), borrowed[got].len};
  }
  if (fine) {
    jsize cap = (*env)->GetArrayLength(env, out);
    jfloat *o = (*env)->GetFloatArrayElements(env, out, NULL);
    dbrt_status s = dbrt_session_classify_zero_shot((dbrt_session *)(intptr_t)session, chars(&t), t.len, strs, (size_t)n,
                                                    chars(&tpl), tpl.len, multi_label ? 1 : 0, o, (size_t)cap);
    if (o) (*env)->ReleaseFloatArrayElements(env, out, o, s == DBRT_OK ? 0 : JNI_ABORT);
    ok(env, s);
  }
  for (jsize i = 0; i < got; i++) {
    jbyteArray label = borrowed[i].array;
    give_back(env, &borrowed[i]);
    (*env)->DeleteLocalRef(env, label);
  }
  if (have_t) give_back(env, &t);
  if (have_tpl) give_back(env, &tpl);
  free(borrowed);
  free(strs);
}
