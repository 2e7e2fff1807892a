/* The stand-in AscendCL library's self-test (see run.sh): a full cycle with outputs checked,
 * two sessions sharing one weight memory, threads, then every violation class and every
 * injected failure (selftest_misuse.c), and nothing live after teardown.
 *   selftest MODEL.om            everything
 *   selftest MODEL.om --no-ort   the load fails with a clear message (onnxruntime missing) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selftest.h"

int failures;
/* The last gear is one per library: checked only while one thread runs. */
static int check_last_gear = 1;
unsigned char *om_bytes;
size_t om_size;

const char *recent(void) {
    const char *m = aclGetRecentErrMsg();
    return m ? m : "(none)";
}

uint64_t violations(void) {
    struct standin_stats st;
    standin_get_stats(&st);
    return st.violations;
}

void expect_violation(uint64_t before, aclError rc, aclError code, const char *needle,
                      const char *what) {
    CHECK(rc == code, "%s: returned %d, expected %d", what, rc, code);
    CHECK(violations() == before + 1, "%s: %llu violations, expected %llu", what,
          (unsigned long long)violations(), (unsigned long long)before + 1);
    CHECK(strstr(standin_last_violation(), needle), "%s: violation '%s' lacks '%s'", what,
          standin_last_violation(), needle);
    CHECK(strstr(recent(), needle), "%s: message '%s' lacks '%s'", what, recent(), needle);
}

int device_open(struct device *dev) {
    memset(dev, 0, sizeof *dev);
    OK(aclrtSetDevice(0));
    OK(aclrtCreateContext(&dev->ctx, 0));
    OK(aclmdlQuerySizeFromMem(om_bytes, om_size, &dev->work_size, &dev->weight_size));
    OK(aclrtMalloc(&dev->weight, dev->weight_size, ACL_MEM_MALLOC_HUGE_FIRST));
    return dev->weight ? 0 : -1;
}

void device_close(struct device *dev) {
    OK(aclrtSetCurrentContext(dev->ctx));
    OK(aclrtFree(dev->weight));
    OK(aclrtDestroyContext(dev->ctx));
    OK(aclrtResetDevice(0));
}

int session_open(struct device *dev, struct session *s) {
    memset(s, 0, sizeof *s);
    OK(aclrtCreateContext(&s->ctx, 0));
    OK(aclrtCreateStream(&s->stream));
    OK(aclrtMalloc(&s->work, dev->work_size, ACL_MEM_MALLOC_HUGE_FIRST));
    aclError rc = aclmdlLoadFromMemWithMem(om_bytes, om_size, &s->id, s->work, dev->work_size,
                                           dev->weight, dev->weight_size);
    if (rc != ACL_SUCCESS) return rc;
    s->desc = aclmdlCreateDesc();
    OK(aclmdlGetDesc(s->desc, s->id));
    CHECK(aclmdlGetNumInputs(s->desc) == 3 && aclmdlGetNumOutputs(s->desc) == 1, "desc: io");
    size_t gear_index = 0;
    OK(aclmdlGetInputIndexByName(s->desc, ACL_DYNAMIC_TENSOR_NAME, &gear_index));
    CHECK(gear_index == 2, "gear input at %zu", gear_index);
    OK(aclmdlGetInputDynamicGearCount(s->desc, (size_t)-1, &s->gear_count));
    aclmdlIODims dims[100];
    OK(aclmdlGetInputDynamicDims(s->desc, (size_t)-1, dims, s->gear_count));
    for (size_t k = 0; k < s->gear_count; k++) {
        CHECK(dims[k].dimCount == 5 && dims[k].dims[2] == H && dims[k].dims[1] == dims[k].dims[4],
              "gear %zu dims", k);
        s->gears[k] = dims[k].dims[1];
    }
    s->in = aclmdlCreateDataset();
    s->out = aclmdlCreateDataset();
    for (int i = 0; i < 3; i++) {
        s->in_size[i] = aclmdlGetInputSizeByIndex(s->desc, (size_t)i);
        OK(aclrtMalloc(&s->in_dev[i], s->in_size[i], ACL_MEM_MALLOC_HUGE_FIRST));
        s->in_buf[i] = aclCreateDataBuffer(s->in_dev[i], s->in_size[i]);
        OK(aclmdlAddDatasetBuffer(s->in, s->in_buf[i]));
    }
    s->out_size = aclmdlGetOutputSizeByIndex(s->desc, 0);
    OK(aclrtMalloc(&s->out_dev, s->out_size, ACL_MEM_MALLOC_HUGE_FIRST));
    s->out_buf = aclCreateDataBuffer(s->out_dev, s->out_size);
    OK(aclmdlAddDatasetBuffer(s->out, s->out_buf));
    return ACL_SUCCESS;
}

void session_close(struct session *s) {
    OK(aclrtSetCurrentContext(s->ctx));
    if (s->id) /* 0: unloaded already (ids start at 1) */
        OK(aclmdlUnload(s->id));
    OK(aclmdlDestroyDesc(s->desc));
    OK(aclmdlDestroyDataset(s->in));
    OK(aclmdlDestroyDataset(s->out));
    for (int i = 0; i < 3; i++) {
        OK(aclDestroyDataBuffer(s->in_buf[i]));
        OK(aclrtFree(s->in_dev[i]));
    }
    OK(aclDestroyDataBuffer(s->out_buf));
    OK(aclrtFree(s->out_dev));
    OK(aclrtFree(s->work));
    OK(aclrtDestroyStream(s->stream));
    OK(aclrtDestroyContext(s->ctx));
}

int session_run(struct session *s, size_t n, unsigned seed) {
    int64_t gear = 0;
    for (size_t k = 0; k < s->gear_count; k++)
        if (s->gears[k] >= (int64_t)n && (!gear || s->gears[k] < gear)) gear = s->gears[k];
    if (!gear) return -1;
    float hidden[64 * H], mask[64], out[64 * H], expect[64 * H], total[H] = {0};
    for (size_t i = 0; i < n * H; i++) {
        seed = seed * 1103515245u + 12345u;
        hidden[i] = (float)((seed >> 8) % 2000) / 1000.0f - 1.0f;
        total[i % H] += hidden[i];
    }
    for (size_t i = 0; i < (size_t)gear; i++) mask[i] = i < n ? 1.0f : 0.0f;
    for (size_t i = 0; i < n * H; i++) expect[i] = 2 * hidden[i] + total[i % H];
    size_t rows = n * H * sizeof(float), padded = (size_t)gear * H * sizeof(float);
    int before = failures;
    OK(aclrtSetCurrentContext(s->ctx));
    OK(aclrtMemcpy(s->in_dev[0], s->in_size[0], hidden, rows, ACL_MEMCPY_HOST_TO_DEVICE));
    if (padded > rows) /* the padding rows: device memory is not zeroed */
        OK(aclrtMemset((char *)s->in_dev[0] + rows, s->in_size[0] - rows, 0, padded - rows));
    OK(aclrtMemcpy(s->in_dev[1], s->in_size[1], mask, (size_t)gear * sizeof(float),
                   ACL_MEMCPY_HOST_TO_DEVICE));
    aclmdlIODims dims = {.dimCount = 5, .dims = {1, gear, H, 1, gear}};
    strcpy(dims.name, ACL_DYNAMIC_TENSOR_NAME);
    OK(aclmdlSetInputDynamicDims(s->id, s->in, 2, &dims));
    OK(aclmdlExecute(s->id, s->in, s->out));
    OK(aclrtMemcpy(out, sizeof out, s->out_dev, rows, ACL_MEMCPY_DEVICE_TO_HOST));
    for (size_t i = 0; i < n * H; i++)
        if (!(fabsf(out[i] - expect[i]) <= 1e-5f)) {
            CHECK(0, "n=%zu gear=%lld: out[%zu] = %g, expected %g", n, (long long)gear, i, out[i],
                  expect[i]);
            break;
        }
    struct standin_stats st;
    standin_get_stats(&st);
    CHECK(!check_last_gear || st.last_gear == (uint64_t)gear, "last gear %llu, expected %lld",
          (unsigned long long)st.last_gear, (long long)gear);
    return failures == before ? 0 : -1;
}

void expect_no_live_objects(const char *when) {
    struct standin_stats st;
    standin_get_stats(&st);
    CHECK(!st.allocations && !st.allocated_bytes && !st.contexts && !st.streams && !st.models &&
              !st.descs && !st.datasets && !st.data_buffers && !st.devices && !st.ort_sessions,
          "%s: live objects: %llu blocks (%llu bytes), %llu contexts, %llu streams, %llu models, "
          "%llu descs, %llu datasets, %llu buffers, %llu devices, %llu sessions",
          when, (unsigned long long)st.allocations, (unsigned long long)st.allocated_bytes,
          (unsigned long long)st.contexts, (unsigned long long)st.streams,
          (unsigned long long)st.models, (unsigned long long)st.descs,
          (unsigned long long)st.datasets, (unsigned long long)st.data_buffers,
          (unsigned long long)st.devices, (unsigned long long)st.ort_sessions);
}

static void test_cycle(void) {
    struct device dev;
    struct session a, b;
    standin_reset();
    if (device_open(&dev) || session_open(&dev, &a) || session_open(&dev, &b)) {
        CHECK(0, "cycle: setup failed: %s", recent());
        return;
    }
    struct standin_stats st;
    standin_get_stats(&st);
    CHECK(st.models == 2 && st.ort_sessions == 1, "two instances on one weight memory: %llu "
          "models, %llu onnxruntime sessions", (unsigned long long)st.models,
          (unsigned long long)st.ort_sessions);
    size_t lengths[] = {1, 3, 4, 5, 8, 13, 16};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        session_run(&a, lengths[i], (unsigned)i);
        session_run(&b, lengths[lengths[i] % 7], (unsigned)i + 100);
    }
    CHECK(session_run(&a, 17, 1) == -1, "17 tokens fit no gear");
    standin_get_stats(&st);
    CHECK(st.executes == 14 && st.violations == 0, "cycle: %llu executes, %llu violations (%s)",
          (unsigned long long)st.executes, (unsigned long long)st.violations,
          standin_last_violation());
    CHECK(standin_calls("aclmdlExecute") == 14, "execute calls");
    session_close(&a);
    session_close(&b);
    device_close(&dev);
    expect_no_live_objects("after the cycle");
}

static void *run_thread(void *arg) {
    struct session *s = arg;
    for (unsigned i = 0; i < 20; i++) session_run(s, 1 + i % 16, i);
    return NULL;
}

/* Sessions run at the same time on their own threads, as dbrt's sessions may. */
static void test_threads(void) {
    struct device dev;
    struct session s[3];
    pthread_t t[3];
    standin_reset();
    if (device_open(&dev)) return;
    for (int i = 0; i < 3; i++) session_open(&dev, &s[i]);
    check_last_gear = 0;
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, run_thread, &s[i]);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    check_last_gear = 1;
    struct standin_stats st;
    standin_get_stats(&st);
    CHECK(st.executes == 60, "threads: %llu executes", (unsigned long long)st.executes);
    CHECK(violations() == 0, "threads: %s", standin_last_violation());
    for (int i = 0; i < 3; i++) session_close(&s[i]);
    device_close(&dev);
    expect_no_live_objects("after the threads");
}

static void test_parse_error(void) {
    size_t work, weight;
    unsigned char junk[64] = "DBRT-STANDIN-OM 1\nsoc_version Ascend310B1\ninput_shape x:1\n";
    uint64_t before = violations();
    CHECK(aclmdlQuerySizeFromMem(junk, sizeof junk, &work, &weight) == ACL_ERROR_PARSE_MODEL,
          "bad model bytes: not ACL_ERROR_PARSE_MODEL");
    CHECK(strstr(recent(), "not a model the stand-in can read"), "parse message: %s", recent());
    CHECK(violations() == before, "a bad model is an error, not a misuse");
    unsigned char *cut = malloc(om_size);
    memcpy(cut, om_bytes, om_size);
    CHECK(aclmdlQuerySizeFromMem(cut, om_size - 1, &work, &weight) == ACL_ERROR_PARSE_MODEL,
          "a truncated model parses");
    free(cut);
}

static int read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    om_bytes = malloc((size_t)n);
    om_size = om_bytes ? fread(om_bytes, 1, (size_t)n, f) : 0;
    fclose(f);
    return om_size == (size_t)n && n > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2 || read_file(argv[1])) {
        fprintf(stderr, "usage: selftest MODEL.om [--no-ort]\n");
        return 2;
    }
    /* Before aclInit everything is refused. */
    uint64_t before = violations();
    expect_violation(before, aclrtSetDevice(0), ACL_ERROR_UNINITIALIZE, "before aclInit",
                     "aclrtSetDevice before aclInit");
    OK(aclInit(NULL));
    CHECK(aclInit(NULL) == ACL_ERROR_REPEAT_INITIALIZE, "a second aclInit");
    if (argc > 2 && strcmp(argv[2], "--no-ort") == 0) {
        struct device dev;
        struct session s;
        device_open(&dev);
        CHECK(session_open(&dev, &s) == ACL_ERROR_INTERNAL_ERROR, "load without onnxruntime");
        CHECK(strstr(recent(), "onnxruntime"), "load without onnxruntime: '%s'", recent());
        printf("no onnxruntime: %s\n", recent());
        OK(aclrtFree(s.work));
        OK(aclrtDestroyStream(s.stream));
        OK(aclrtDestroyContext(s.ctx));
        device_close(&dev);
        expect_no_live_objects("after the failed load");
    } else {
        test_cycle();
        test_threads();
        test_parse_error();
        test_violations();
        test_injected_failures();
        expect_no_live_objects("at the end");
        before = violations(); /* one more, for run.sh to find in the log */
        expect_violation(before, aclrtResetDevice(0), ACL_ERROR_INVALID_PARAM,
                         "without a matching aclrtSetDevice", "aclrtResetDevice at the end");
    }
    free(om_bytes);
    struct standin_stats st;
    standin_get_stats(&st);
    printf("selftest: %s (%d failed checks; %llu calls in the last part)\n",
           failures ? "FAILED" : "ok", failures, (unsigned long long)st.calls_total);
    return failures ? 1 : 0;
}
