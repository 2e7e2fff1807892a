/*
 * ort_count: N inferences of an ONNX model through onnxruntime's C API on one thread, for
 * instruction counting under qemu-user (benches/arm-mca.sh). Usage:
 *
 *   ort_count LIBONNXRUNTIME.so MODEL.onnx SEQ N
 *
 * Feeds input_ids (1 x SEQ, int64: [CLS]=1, then 1000 + i % 20000, [SEP]=2 last) and an
 * all-ones attention_mask, reads "logits". After each inference r (1-based) it makes the system
 * call getpid(0xdb12c0de, r): under qemu with benches/qemu/tbcount.c that snapshots the counts
 * (elsewhere getpid ignores its arguments). Prints "ort_base 0x..." (the library's load address,
 * so executed addresses can be mapped back to its disassembly) and the first logits.
 *
 * The wheel ships no C header, so the library is dlopen()ed and the OrtApi function table is
 * read by index. ORT only ever appends to OrtApi, so these indices hold for every release:
 *   2 GetErrorMessage, 3 CreateEnv, 7 CreateSession, 9 Run, 10 CreateSessionOptions,
 *   24 SetIntraOpNumThreads, 25 SetInterOpNumThreads, 49 CreateTensorWithDataAsOrtValue,
 *   69 CreateCpuMemoryInfo.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef void *St; /* OrtStatus*, NULL on success */
typedef void *(*ApiFn)(void);
struct ApiBase {
    void **(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
};

static void **api;
static void check(St s, const char *what)
{
    if (s) {
        const char *(*msg)(St) = (const char *(*)(St))api[2];
        fprintf(stderr, "%s: %s\n", what, msg(s));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s LIB MODEL SEQ N\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    const struct ApiBase *(*get_base)(void) =
        (const struct ApiBase *(*)(void))dlsym(lib, "OrtGetApiBase");
    Dl_info info;
    if (!get_base || !dladdr((void *)get_base, &info)) {
        fprintf(stderr, "OrtGetApiBase not found\n");
        return 1;
    }
    printf("ort_base %p\n", info.dli_fbase);
    const struct ApiBase *base = get_base();
    api = base->GetApi(16); /* an old API version: enough for the calls below */
    if (!api) {
        fprintf(stderr, "GetApi(16) failed\n");
        return 1;
    }
    printf("ort_version %s\n", base->GetVersionString());
    int seq = atoi(argv[3]), n = atoi(argv[4]);

    void *env, *opts, *sess, *mem;
    check(((St(*)(int, const char *, void **))api[3])(3 /* ERROR */, "count", &env), "CreateEnv");
    check(((St(*)(void **))api[10])(&opts), "CreateSessionOptions");
    check(((St(*)(void *, int))api[24])(opts, 1), "SetIntraOpNumThreads");
    check(((St(*)(void *, int))api[25])(opts, 1), "SetInterOpNumThreads");
    check(((St(*)(void *, const char *, void *, void **))api[7])(env, argv[2], opts, &sess),
          "CreateSession");
    check(((St(*)(int, int, void **))api[69])(0 /* device */, 0 /* default */, &mem),
          "CreateCpuMemoryInfo");

    int64_t *ids = calloc(seq, sizeof *ids), *mask = calloc(seq, sizeof *mask);
    for (int i = 0; i < seq; i++) {
        ids[i] = 1000 + i % 20000;
        mask[i] = 1;
    }
    ids[0] = 1;
    ids[seq - 1] = 2;
    int64_t shape[2] = {1, seq};
    void *in[2];
    typedef St (*MkTensor)(void *, void *, size_t, const int64_t *, size_t, int, void **);
    check(((MkTensor)api[49])(mem, ids, seq * 8, shape, 2, 7 /* int64 */, &in[0]), "ids");
    check(((MkTensor)api[49])(mem, mask, seq * 8, shape, 2, 7, &in[1]), "mask");
    const char *in_names[2] = {"input_ids", "attention_mask"}, *out_names[1] = {"logits"};
    typedef St (*RunFn)(void *, void *, const char *const *, void *const *, size_t,
                        const char *const *, size_t, void **);
    typedef St (*DataFn)(void *, void **);
    for (int r = 0; r < n; r++) {
        void *out = NULL;
        check(((RunFn)api[9])(sess, NULL, in_names, in, 2, out_names, 1, &out), "Run");
        float *logits;
        check(((DataFn)api[51])(out, (void **)&logits), "GetTensorMutableData");
        syscall(SYS_getpid, 0xdb12c0deu, (unsigned long)(r + 1));
        if (r == n - 1)
            printf("logits %g %g %g\n", logits[0], logits[1], logits[2]);
    }
    return 0;
}
