/* The self-test's misuse half: one test per class of violation (the call fails with its code,
 * the violation is counted and its message says what), and every injected failure. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selftest.h"

/* A call that must be caught: `code`, one more violation, `needle` in its message. */
#define CAUGHT(call, code, needle)                                                             \
    do {                                                                                       \
        uint64_t before_ = violations();                                                       \
        expect_violation(before_, (call), (code), (needle), #call);                            \
    } while (0)

static void *malloc_without_context(void *arg) {
    void *p = NULL;
    *(aclError *)arg = aclrtMalloc(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST);
    return NULL;
}

static void memory_violations(struct device *dev) {
    char host[256] = {0};
    void *p = NULL, *q = NULL;
    aclError rc = 0;
    pthread_t t;
    OK(aclrtSetCurrentContext(dev->ctx));
    /* No current context on a new thread. */
    uint64_t before = violations();
    pthread_create(&t, NULL, malloc_without_context, &rc);
    pthread_join(t, NULL);
    CHECK(rc == ACL_ERROR_RT_CONTEXT_NULL && violations() == before + 1 &&
              strstr(standin_last_violation(), "no current context"),
          "malloc on a thread without a context: %d, %s", rc, standin_last_violation());
    /* Unknown pointers, beyond the block, use after free, double free. */
    CAUGHT(aclrtFree(host), ACL_ERROR_INVALID_PARAM, "unknown pointer");
    CAUGHT(aclrtMemcpy(host, sizeof host, host, 8, ACL_MEMCPY_HOST_TO_DEVICE),
           ACL_ERROR_INVALID_PARAM, "unknown pointer");
    OK(aclrtMalloc(&p, 100, ACL_MEM_MALLOC_NORMAL_ONLY));
    CAUGHT(aclrtMemcpy(p, 101, host, 8, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM,
           "run past the end");
    CAUGHT(aclrtMemcpy(host, sizeof host, (char *)p + 50, 51, ACL_MEMCPY_DEVICE_TO_HOST),
           ACL_ERROR_INVALID_PARAM, "run past the end");
    CAUGHT(aclrtMemset((char *)p + 1, 100, 0, 10), ACL_ERROR_INVALID_PARAM, "run past the end");
    CAUGHT(aclrtMemset(p, 10, 0, 11), ACL_ERROR_INVALID_PARAM, "count 11 > maxCount 10");
    before = violations();
    CHECK(aclCreateDataBuffer(p, 101) == NULL && violations() == before + 1 &&
              strstr(standin_last_violation(), "run past the end"),
          "data buffer beyond its block: %s", standin_last_violation());
    CAUGHT(aclrtFree((char *)p + 4), ACL_ERROR_INVALID_PARAM, "not the start");
    /* Copy kinds against the run mode. */
    OK(aclrtMalloc(&q, 100, ACL_MEM_MALLOC_NORMAL_ONLY));
    CAUGHT(aclrtMemcpy(p, 100, q, 8, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM,
           "is device memory, but the kind says host");
    CAUGHT(aclrtMemcpy(p, 100, q, 8, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_INVALID_PARAM,
           "is device memory, but the kind says host");
    CAUGHT(aclrtMemcpy(host, sizeof host, host, 8, ACL_MEMCPY_DEVICE_TO_DEVICE),
           ACL_ERROR_INVALID_PARAM, "unknown pointer");
    standin_set_run_mode(ACL_DEVICE);
    aclrtRunMode mode = ACL_HOST;
    OK(aclrtGetRunMode(&mode));
    CHECK(mode == ACL_DEVICE, "run mode %d", (int)mode);
    CAUGHT(aclrtMemcpy(p, 100, host, 8, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM,
           "in run mode ACL_DEVICE");
    OK(aclrtMemcpy(p, 100, host, 8, ACL_MEMCPY_DEVICE_TO_DEVICE));
    standin_set_run_mode(ACL_HOST);
    OK(aclrtFree(q));
    OK(aclrtFree(p));
    CAUGHT(aclrtMemset(p, 8, 0, 8), ACL_ERROR_INVALID_PARAM, "use after free");
    CAUGHT(aclrtMemcpy(host, sizeof host, p, 8, ACL_MEMCPY_DEVICE_TO_HOST),
           ACL_ERROR_INVALID_PARAM, "use after free");
    CAUGHT(aclrtFree(p), ACL_ERROR_INVALID_PARAM, "double free");
}

static void load_violations(struct device *dev) {
    uint32_t id = 0;
    void *work = NULL, *small = NULL;
    OK(aclrtSetCurrentContext(dev->ctx));
    OK(aclrtMalloc(&work, dev->work_size, ACL_MEM_MALLOC_HUGE_FIRST));
    CAUGHT(aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, work, dev->work_size - 1, dev->weight,
                                    dev->weight_size),
           ACL_ERROR_INVALID_PARAM, "less than the");
    CAUGHT(aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, work, dev->work_size, dev->weight,
                                    dev->weight_size - 1),
           ACL_ERROR_INVALID_PARAM, "less than the");
    CAUGHT(aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, work, dev->work_size + 1, dev->weight,
                                    dev->weight_size),
           ACL_ERROR_INVALID_PARAM, "run past the end");
    OK(aclrtMalloc(&small, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    CAUGHT(aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, small, dev->work_size, dev->weight,
                                    dev->weight_size),
           ACL_ERROR_INVALID_PARAM, "run past the end");
    OK(aclrtFree(small));
    OK(aclrtFree(work));
    struct standin_stats st;
    standin_get_stats(&st);
    CHECK(st.models == 0 && st.ort_sessions == 0, "a refused load left a model");
}

static void session_violations(struct device *dev, struct session *s) {
    /* Execute and unload in another context than the load's. */
    OK(aclrtSetCurrentContext(dev->ctx));
    CAUGHT(aclmdlExecute(s->id, s->in, s->out), ACL_ERROR_RT_MODEL_CONTEXT, "was loaded in context");
    CAUGHT(aclmdlUnload(s->id), ACL_ERROR_RT_MODEL_CONTEXT, "was loaded in context");
    CAUGHT(aclrtDestroyStream(s->stream), ACL_ERROR_RT_STREAM_CONTEXT, "belongs to context");
    /* Destroying a context that still owns a stream and a model. */
    CAUGHT(aclrtDestroyContext(s->ctx), ACL_ERROR_INVALID_PARAM, "still owns 1 stream(s) and 1");
    /* Freeing memory a loaded model uses; sharing one instance's work memory with another. */
    OK(aclrtSetCurrentContext(s->ctx));
    CAUGHT(aclrtFree(s->work), ACL_ERROR_INVALID_PARAM, "still loaded");
    CAUGHT(aclrtFree(dev->weight), ACL_ERROR_INVALID_PARAM, "still loaded");
    uint32_t id;
    CAUGHT(aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, s->work, dev->work_size, dev->weight,
                                    dev->weight_size),
           ACL_ERROR_INVALID_PARAM, "overlaps memory model");
    /* Datasets against the model: no gear, a gear that is not one, a gear overwritten. */
    CAUGHT(aclmdlExecute(s->id, s->in, s->out), ACL_ERROR_INVALID_PARAM, "no gear set");
    aclmdlIODims dims = {.dimCount = 5, .dims = {1, 5, H, 1, 5}};
    CAUGHT(aclmdlSetInputDynamicDims(s->id, s->in, 2, &dims), ACL_ERROR_INVALID_PARAM,
           "not one of the model's");
    /* Every dim counts: hidden's and mask's lengths agree, H is the model's, all five given. */
    const int64_t wrong[][5] = {{1, 8, H, 1, 4}, {1, 4, H, 1, 8}, {1, 8, H + 1, 1, 8},
                                {2, 8, H, 1, 8}, {1, 8, H, 2, 8}};
    for (size_t k = 0; k < sizeof wrong / sizeof *wrong; k++) {
        memcpy(dims.dims, wrong[k], sizeof wrong[k]);
        CAUGHT(aclmdlSetInputDynamicDims(s->id, s->in, 2, &dims), ACL_ERROR_INVALID_PARAM,
               "not one of the model's");
    }
    int64_t gear8[5] = {1, 8, H, 1, 8};
    memcpy(dims.dims, gear8, sizeof gear8);
    dims.dimCount = 3;
    CAUGHT(aclmdlSetInputDynamicDims(s->id, s->in, 2, &dims), ACL_ERROR_INVALID_PARAM,
           "not one of the model's");
    dims.dimCount = 5;
    CAUGHT(aclmdlSetInputDynamicDims(s->id, s->in, 0, &dims), ACL_ERROR_INVALID_PARAM,
           "not the gear input's");
    OK(aclmdlSetInputDynamicDims(s->id, s->in, 2, &dims));
    OK(aclrtMemset(s->in_dev[2], s->in_size[2], 0, s->in_size[2]));
    CAUGHT(aclmdlExecute(s->id, s->in, s->out), ACL_ERROR_INVALID_PARAM, "no longer holds a gear");
    CAUGHT(aclmdlExecute(s->id, s->out, s->in), ACL_ERROR_INVALID_PARAM, "datasets of 1 inputs");
    size_t count = 0;
    CAUGHT(aclmdlGetInputDynamicGearCount(s->desc, 0, &count), ACL_ERROR_INVALID_PARAM,
           "index must be -1");
    /* A dataset whose input buffer is smaller than the model's input. */
    aclmdlDataset *in = aclmdlCreateDataset();
    void *small = NULL;
    OK(aclrtMalloc(&small, 16, ACL_MEM_MALLOC_HUGE_FIRST));
    aclDataBuffer *buf = aclCreateDataBuffer(small, 16);
    OK(aclmdlAddDatasetBuffer(in, buf));
    OK(aclmdlAddDatasetBuffer(in, s->in_buf[1]));
    OK(aclmdlAddDatasetBuffer(in, s->in_buf[2]));
    OK(aclmdlSetInputDynamicDims(s->id, in, 2, &dims));
    CAUGHT(aclmdlExecute(s->id, in, s->out), ACL_ERROR_INVALID_PARAM, "has 16 bytes");
    /* ...and one whose buffer's memory was freed. */
    OK(aclDestroyDataBuffer(buf));
    CAUGHT(aclmdlExecute(s->id, in, s->out), ACL_ERROR_INVALID_PARAM, "was destroyed");
    OK(aclrtFree(small));
    OK(aclmdlDestroyDataset(in));
    /* The session still runs after all that. */
    CHECK(session_run(s, 6, 7) == 0, "the session runs after the misuses");
}

/* Weight memory is the graph: written while loaded, it is refused to a new instance and
 * reported when the last instance unloads. */
static void weight_violations(struct device *dev) {
    struct session s;
    void *work = NULL;
    uint32_t id;
    unsigned char byte = 0;
    if (session_open(dev, &s) != ACL_SUCCESS) return;
    OK(aclrtMemcpy(&byte, 1, dev->weight, 1, ACL_MEMCPY_DEVICE_TO_HOST));
    byte ^= 0xff;
    OK(aclrtMemcpy(dev->weight, dev->weight_size, &byte, 1, ACL_MEMCPY_HOST_TO_DEVICE));
    OK(aclrtMalloc(&work, dev->work_size, ACL_MEM_MALLOC_HUGE_FIRST));
    CAUGHT(aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, work, dev->work_size, dev->weight,
                                    dev->weight_size),
           ACL_ERROR_INVALID_PARAM, "is not the weight memory");
    OK(aclrtFree(work));
    CAUGHT(aclmdlUnload(s.id), ACL_ERROR_INVALID_PARAM, "weight memory was written while loaded");
    s.id = 0;
    session_close(&s);
    struct standin_stats st;
    standin_get_stats(&st);
    CHECK(st.models == 0 && st.ort_sessions == 0, "the reported unload still unloaded");
}

void test_violations(void) {
    struct device dev;
    struct session s;
    standin_reset();
    if (device_open(&dev)) return;
    memory_violations(&dev);
    load_violations(&dev);
    if (session_open(&dev, &s) == ACL_SUCCESS) {
        session_violations(&dev, &s);
        session_close(&s);
    }
    weight_violations(&dev);
    device_close(&dev);
    CAUGHT(aclrtResetDevice(0), ACL_ERROR_INVALID_PARAM, "without a matching aclrtSetDevice");
    struct standin_stats st;
    standin_get_stats(&st);
    printf("violations caught: %llu\n", (unsigned long long)st.violations);
    expect_no_live_objects("after the violations");
}
