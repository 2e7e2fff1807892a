/* onnxruntime through its C API, dlopen'd from DBRT_ONNXRUNTIME_LIB. No header is installed, so
 * the few `OrtApi` entries used are read at their positions in the table (the table only grows
 * at its end; positions as dbrt's runtime/src/offload/ort/api.rs documents them, API version 22).
 * The environment logs through a function that drops everything: nothing reaches stderr. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

typedef void OrtStatus, OrtEnv, OrtSession, OrtSessionOptions, OrtValue, OrtMemoryInfo;
typedef void (*LoggingFunction)(void *, int, const char *, const char *, const char *,
                                const char *);
struct OrtApiBase {
    const void *const *(*get_api)(uint32_t version);
    const char *(*get_version_string)(void);
};

#define API_VERSION 22
enum {
    GET_ERROR_MESSAGE = 2,
    CREATE_ENV_WITH_CUSTOM_LOGGER = 4,
    CREATE_SESSION_FROM_ARRAY = 8,
    RUN = 9,
    CREATE_SESSION_OPTIONS = 10,
    SET_INTRA_OP_NUM_THREADS = 24,
    CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE = 49,
    CREATE_CPU_MEMORY_INFO = 69,
    RELEASE_STATUS = 93,
    RELEASE_SESSION = 95,
    RELEASE_VALUE = 96,
    RELEASE_SESSION_OPTIONS = 100,
};
#define LOGGING_LEVEL_ERROR 3
#define ELEMENT_FLOAT 1
#define ARENA_ALLOCATOR 1
#define MEM_TYPE_DEFAULT 0

/* Set once, under the stand-in's lock, before any session exists; read-only afterwards. */
static const void *const *g_api;
static OrtEnv *g_env;
static OrtMemoryInfo *g_cpu;

/* Entry `index` of the table as a function of type T. */
#define ENTRY(T, index) ((T)(uintptr_t)g_api[index])

static void drop_log(void *param, int severity, const char *category, const char *logid,
                     const char *location, const char *message) {
    (void)param, (void)severity, (void)category, (void)logid, (void)location, (void)message;
}

/* Copies a status's message to err and releases it; returns -1 (0 for a NULL status). */
static int check(OrtStatus *status, const char *what, char *err, size_t err_len) {
    if (!status) return 0;
    const char *message = ENTRY(const char *(*)(const OrtStatus *), GET_ERROR_MESSAGE)(status);
    snprintf(err, err_len, "%s: %s", what, message ? message : "(no message)");
    ENTRY(void (*)(OrtStatus *), RELEASE_STATUS)(status);
    return -1;
}

static int ort_init(char *err, size_t err_len) {
    if (g_env) return 0;
    const char *path = getenv("DBRT_ONNXRUNTIME_LIB");
    if (!path || !*path) {
        snprintf(err, err_len, "DBRT_ONNXRUNTIME_LIB is not set (the stand-in runs models with "
                               "onnxruntime's shared library)");
        return -1;
    }
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(err, err_len, "cannot load onnxruntime from DBRT_ONNXRUNTIME_LIB=%s: %s", path,
                 why ? why : "unknown error");
        return -1;
    }
    const struct OrtApiBase *(*get_base)(void) =
        (const struct OrtApiBase *(*)(void))(uintptr_t)dlsym(lib, "OrtGetApiBase");
    const struct OrtApiBase *base = get_base ? get_base() : NULL;
    const void *const *api = base ? base->get_api(API_VERSION) : NULL;
    if (!api) {
        snprintf(err, err_len, "%s has no onnxruntime C API of version %d", path, API_VERSION);
        dlclose(lib);
        return -1;
    }
    g_api = api; /* the library stays loaded from here on */
    typedef OrtStatus *(*CreateEnv)(LoggingFunction, void *, int, const char *, OrtEnv **);
    typedef OrtStatus *(*CreateCpu)(int, int, OrtMemoryInfo **);
    OrtEnv *env = NULL;
    if (check(ENTRY(CreateEnv, CREATE_ENV_WITH_CUSTOM_LOGGER)(drop_log, NULL, LOGGING_LEVEL_ERROR,
                                                              "dbrt-acl-standin", &env),
              "CreateEnvWithCustomLogger", err, err_len) ||
        check(ENTRY(CreateCpu, CREATE_CPU_MEMORY_INFO)(ARENA_ALLOCATOR, MEM_TYPE_DEFAULT, &g_cpu),
              "CreateCpuMemoryInfo", err, err_len))
        return -1;
    g_env = env;
    return 0;
}

int ort_create(const void *onnx, size_t len, void **session, char *err, size_t err_len) {
    if (ort_init(err, err_len)) return -1;
    typedef OrtStatus *(*CreateOptions)(OrtSessionOptions **);
    typedef OrtStatus *(*SetThreads)(OrtSessionOptions *, int);
    typedef OrtStatus *(*CreateSession)(const OrtEnv *, const void *, size_t,
                                        const OrtSessionOptions *, OrtSession **);
    OrtSessionOptions *options = NULL;
    *session = NULL;
    if (check(ENTRY(CreateOptions, CREATE_SESSION_OPTIONS)(&options), "CreateSessionOptions", err,
              err_len))
        return -1;
    /* One thread per run: the device's parallelism is not what the stand-in models. */
    int rc = check(ENTRY(SetThreads, SET_INTRA_OP_NUM_THREADS)(options, 1), "SetIntraOpNumThreads",
                   err, err_len);
    if (!rc)
        rc = check(ENTRY(CreateSession, CREATE_SESSION_FROM_ARRAY)(g_env, onnx, len, options,
                                                                  session),
                   "CreateSessionFromArray", err, err_len);
    ENTRY(void (*)(OrtSessionOptions *), RELEASE_SESSION_OPTIONS)(options);
    return rc;
}

void ort_release(void *session) {
    if (session && g_api) ENTRY(void (*)(OrtSession *), RELEASE_SESSION)(session);
}

/* A float tensor of `shape` over `data`, which onnxruntime reads or writes in place. */
static int tensor(float *data, const int64_t *shape, size_t rank, OrtValue **value, char *err,
                  size_t err_len) {
    typedef OrtStatus *(*CreateTensor)(const OrtMemoryInfo *, void *, size_t, const int64_t *,
                                       size_t, int, OrtValue **);
    size_t n = 1;
    for (size_t i = 0; i < rank; i++) n *= (size_t)shape[i];
    return check(ENTRY(CreateTensor, CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE)(
                     g_cpu, data, n * sizeof(float), shape, rank, ELEMENT_FLOAT, value),
                 "CreateTensorWithDataAsOrtValue", err, err_len);
}

int ort_run(void *session, float *hidden, float *mask, float *out, int64_t seq, int64_t hidden_size,
            char *err, size_t err_len) {
    typedef OrtStatus *(*Run)(OrtSession *, const void *, const char *const *,
                              const OrtValue *const *, size_t, const char *const *, size_t,
                              OrtValue **);
    const int64_t rows[3] = {1, seq, hidden_size}, flags[2] = {1, seq};
    OrtValue *values[3] = {NULL, NULL, NULL};
    int rc = tensor(hidden, rows, 3, &values[0], err, err_len);
    if (!rc) rc = tensor(mask, flags, 2, &values[1], err, err_len);
    if (!rc) rc = tensor(out, rows, 3, &values[2], err, err_len);
    if (!rc) {
        const char *inputs[2] = {"hidden", "mask"}, *outputs[1] = {"last_hidden"};
        const OrtValue *in[2] = {values[0], values[1]};
        rc = check(ENTRY(Run, RUN)(session, NULL, inputs, in, 2, outputs, 1, &values[2]), "Run",
                   err, err_len);
    }
    for (int i = 0; i < 3; i++)
        if (values[i]) ENTRY(void (*)(OrtValue *), RELEASE_VALUE)(values[i]);
    return rc;
}
