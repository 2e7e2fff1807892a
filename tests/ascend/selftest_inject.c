/* The self-test's injected failures: each AscendCL function, made to fail by standin_fail, answers
 * that code (NULL or 0 for those returning a pointer or a size) and aclGetRecentErrMsg names it;
 * the failure fires on the nth call only, and nth 0 clears it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "selftest.h"

static struct device dev;
static struct session s;

/* Calls function `i` of the table with valid arguments; what it returned, as an aclError
 * (pointers: 0 if non-NULL, 1 if NULL; sizes: the size). */
static aclError call(int i) {
    aclrtContext ctx;
    aclrtStream stream;
    aclrtRunMode mode;
    void *p;
    size_t a, b;
    uint32_t id;
    char host[64] = {0};
    aclmdlIODims dims[8] = {{.dimCount = 5, .dims = {1, 8, H, 1, 8}}};
    switch (i) {
    case 0: return aclInit(NULL);
    case 1: return aclFinalize();
    case 2: return aclrtSetDevice(0);
    case 3: return aclrtResetDevice(0);
    case 4: return aclrtCreateContext(&ctx, 0);
    case 5: return aclrtDestroyContext(s.ctx);
    case 6: return aclrtSetCurrentContext(s.ctx);
    case 7: return aclrtGetCurrentContext(&ctx);
    case 8: return aclrtCreateStream(&stream);
    case 9: return aclrtDestroyStream(s.stream);
    case 10: return aclrtGetRunMode(&mode);
    case 11: return aclrtMalloc(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST);
    case 12: return aclrtFree(s.work);
    case 13: return aclrtMemset(s.in_dev[0], 16, 0, 16);
    case 14: return aclrtMemcpy(s.in_dev[0], 16, host, 16, ACL_MEMCPY_HOST_TO_DEVICE);
    case 15: return aclmdlQuerySizeFromMem(om_bytes, om_size, &a, &b);
    case 16:
        return aclmdlLoadFromMemWithMem(om_bytes, om_size, &id, s.work, dev.work_size, dev.weight,
                                        dev.weight_size);
    case 17: return aclmdlUnload(s.id);
    case 18: return aclmdlCreateDesc() == NULL;
    case 19: return aclmdlDestroyDesc(s.desc);
    case 20: return aclmdlGetDesc(s.desc, s.id);
    case 21: return (aclError)aclmdlGetNumInputs(s.desc);
    case 22: return (aclError)aclmdlGetNumOutputs(s.desc);
    case 23: return (aclError)aclmdlGetInputSizeByIndex(s.desc, 0);
    case 24: return (aclError)aclmdlGetOutputSizeByIndex(s.desc, 0);
    case 25: return aclmdlGetInputIndexByName(s.desc, "mask", &a);
    case 26: return aclmdlGetInputDynamicGearCount(s.desc, (size_t)-1, &a);
    case 27: return aclmdlGetInputDynamicDims(s.desc, (size_t)-1, dims, s.gear_count);
    case 28: return aclmdlCreateDataset() == NULL;
    case 29: return aclmdlDestroyDataset(s.in);
    case 30: return aclmdlAddDatasetBuffer(s.out, s.out_buf);
    case 31: return aclCreateDataBuffer(s.in_dev[0], 16) == NULL;
    case 32: return aclDestroyDataBuffer(s.in_buf[0]);
    case 33: return aclmdlSetInputDynamicDims(s.id, s.in, 2, &dims[0]);
    case 34: return aclmdlExecute(s.id, s.in, s.out);
    default: return -1;
    }
}

static const struct {
    const char *name;
    char returns; /* 'e' aclError, 'p' pointer, 's' size */
} FUNCTIONS[] = {
    {"aclInit", 'e'}, {"aclFinalize", 'e'}, {"aclrtSetDevice", 'e'}, {"aclrtResetDevice", 'e'},
    {"aclrtCreateContext", 'e'}, {"aclrtDestroyContext", 'e'}, {"aclrtSetCurrentContext", 'e'},
    {"aclrtGetCurrentContext", 'e'}, {"aclrtCreateStream", 'e'}, {"aclrtDestroyStream", 'e'},
    {"aclrtGetRunMode", 'e'}, {"aclrtMalloc", 'e'}, {"aclrtFree", 'e'}, {"aclrtMemset", 'e'},
    {"aclrtMemcpy", 'e'}, {"aclmdlQuerySizeFromMem", 'e'}, {"aclmdlLoadFromMemWithMem", 'e'},
    {"aclmdlUnload", 'e'}, {"aclmdlCreateDesc", 'p'}, {"aclmdlDestroyDesc", 'e'},
    {"aclmdlGetDesc", 'e'}, {"aclmdlGetNumInputs", 's'}, {"aclmdlGetNumOutputs", 's'},
    {"aclmdlGetInputSizeByIndex", 's'}, {"aclmdlGetOutputSizeByIndex", 's'},
    {"aclmdlGetInputIndexByName", 'e'}, {"aclmdlGetInputDynamicGearCount", 'e'},
    {"aclmdlGetInputDynamicDims", 'e'}, {"aclmdlCreateDataset", 'p'},
    {"aclmdlDestroyDataset", 'e'}, {"aclmdlAddDatasetBuffer", 'e'}, {"aclCreateDataBuffer", 'p'},
    {"aclDestroyDataBuffer", 'e'}, {"aclmdlSetInputDynamicDims", 'e'}, {"aclmdlExecute", 'e'},
};
#define COUNT (int)(sizeof FUNCTIONS / sizeof *FUNCTIONS)

void test_injected_failures(void) {
    standin_reset();
    if (device_open(&dev) || session_open(&dev, &s) != ACL_SUCCESS) {
        CHECK(0, "injected failures: setup failed: %s", recent());
        return;
    }
    for (int i = 0; i < COUNT; i++) {
        const char *name = FUNCTIONS[i].name;
        int32_t code = 507000 + i;
        char expect[128];
        snprintf(expect, sizeof expect, "injected failure of %s (%d)", name, code);
        OK(aclrtSetCurrentContext(s.ctx));
        uint64_t calls = standin_calls(name), before = violations();
        standin_fail(name, 1, code);
        aclError rc = call(i);
        switch (FUNCTIONS[i].returns) {
        case 'e': CHECK(rc == code, "%s returned %d, not the injected %d", name, rc, code); break;
        case 'p': CHECK(rc == 1, "%s did not return NULL", name); break;
        default: CHECK(rc == 0, "%s returned %d, not 0", name, rc); break;
        }
        CHECK(strcmp(recent(), expect) == 0, "%s: message '%s'", name, recent());
        CHECK(standin_calls(name) == calls + 1, "%s: calls not counted", name);
        CHECK(violations() == before, "%s: an injected failure counted as a violation", name);
    }
    CHECK(session_run(&s, 5, 3) == 0, "the session runs after the injected failures");
    /* The nth call fails, not the ones before it; nth 0 clears a pending failure. */
    standin_fail("aclmdlExecute", 2, ACL_ERROR_RT_MEMORY_ALLOCATION);
    CHECK(session_run(&s, 2, 1) == 0, "the first execute after standin_fail(.., 2, ..)");
    CHECK(aclmdlExecute(s.id, s.in, s.out) == ACL_ERROR_RT_MEMORY_ALLOCATION, "the second");
    CHECK(aclmdlExecute(s.id, s.in, s.out) == ACL_SUCCESS, "the third: %s", recent());
    standin_fail("aclrtMalloc", 1, ACL_ERROR_RT_MEMORY_ALLOCATION);
    standin_fail("aclrtMalloc", 0, 0);
    void *p = NULL;
    OK(aclrtMalloc(&p, 8, ACL_MEM_MALLOC_HUGE_FIRST));
    OK(aclrtFree(p));
    session_close(&s);
    device_close(&dev);
    printf("injected failures: %d functions\n", COUNT);
}
