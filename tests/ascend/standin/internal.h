/* The stand-in AscendCL library's shared state. Every exported function takes the one lock
 * (call_begin) and releases it (call_end); everything below assumes it is held. */
#ifndef DBRT_STANDIN_INTERNAL_H
#define DBRT_STANDIN_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl.h"
#include "standin_control.h"

/* Every exported AscendCL function, for call counts and injected failures. */
#define STANDIN_FUNCTIONS(X)                                                                     \
    X(aclInit) X(aclFinalize) X(aclrtSetDevice) X(aclrtResetDevice) X(aclrtCreateContext)        \
    X(aclrtDestroyContext) X(aclrtSetCurrentContext) X(aclrtGetCurrentContext)                   \
    X(aclrtCreateStream) X(aclrtDestroyStream) X(aclrtGetRunMode) X(aclrtMalloc) X(aclrtFree)    \
    X(aclrtMemset) X(aclrtMemcpy) X(aclmdlQuerySizeFromMem) X(aclmdlLoadFromMemWithMem)          \
    X(aclmdlUnload) X(aclmdlCreateDesc) X(aclmdlDestroyDesc) X(aclmdlGetDesc)                    \
    X(aclmdlGetNumInputs) X(aclmdlGetNumOutputs) X(aclmdlGetInputSizeByIndex)                    \
    X(aclmdlGetOutputSizeByIndex) X(aclmdlGetInputIndexByName) X(aclmdlGetInputDynamicGearCount) \
    X(aclmdlGetInputDynamicDims) X(aclmdlCreateDataset) X(aclmdlDestroyDataset)                  \
    X(aclmdlAddDatasetBuffer) X(aclCreateDataBuffer) X(aclDestroyDataBuffer)                     \
    X(aclmdlSetInputDynamicDims) X(aclmdlExecute)

enum fn_id {
#define STANDIN_ENUM(name) FN_##name,
    STANDIN_FUNCTIONS(STANDIN_ENUM)
#undef STANDIN_ENUM
        FN_COUNT
};

/* A growable set of pointers: the live objects of one kind (handles are validated by lookup,
 * never dereferenced before). */
struct ptr_set {
    void **items;
    size_t len, cap;
};
int set_add(struct ptr_set *set, void *item); /* 0 on success, -1 out of memory */
int set_has(const struct ptr_set *set, const void *item);
void set_remove(struct ptr_set *set, const void *item);

/* The stand-in's limits: sizes are bounded before anything is allocated. */
#define MAX_DEVICES 8
#define MAX_ALLOCATION ((size_t)16 << 30)
#define MAX_GEARS 100
#define MAX_DATASET_BUFFERS 64

struct context {
    int32_t device;
    int is_default; /* the device's default context, made by aclrtSetDevice */
    uint64_t streams, models;
};

struct stream {
    struct context *ctx;
};

/* The state every module shares. */
struct standin {
    int initialized, finalized;
    int32_t run_mode;
    struct standin_stats stats;
    uint64_t calls[FN_COUNT];
    uint32_t fail_nth[FN_COUNT];
    int32_t fail_error[FN_COUNT];
    char last_violation[512];
    uint32_t device_sets[MAX_DEVICES];
    struct context *default_context[MAX_DEVICES];
    struct ptr_set contexts, streams;
};
extern struct standin g;

/* The calling thread's current context (NULL: none). */
extern _Thread_local struct context *t_current;

/* Takes the lock, counts the call, answers an injected failure (returned, non-zero) and refuses
 * calls before aclInit when `needs_init`. */
aclError call_begin(enum fn_id id, int needs_init);
/* Logs "name(args) = result" and releases the lock; returns `rc`. */
aclError call_end(enum fn_id id, aclError rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A misuse by the caller: counted, kept as the last violation, logged, and the thread's recent
 * error message; returns `code`. */
aclError violation(aclError code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An ordinary error (not a misuse): sets the thread's recent error message; returns `code`. */
aclError fail(aclError code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a free-form line to the log, if one is open. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* rt.c: the current context, or a violation (ACL_ERROR_RT_CONTEXT_NULL) naming `what`. */
aclError require_context(const char *what);
/* rt.c: checks that [p, p+size) lies inside one live aclrtMalloc block: 0, or a violation naming
 * `what` (unknown pointer, freed memory, beyond the block). */
aclError check_device_range(const void *p, size_t size, const char *what);
/* rt.c: whether p lies inside a live aclrtMalloc block. */
int is_device_pointer(const void *p);
/* mdl.c: whether [p, p+size) overlaps memory a loaded model instance uses (its id, or 0). */
uint32_t model_using_memory(const void *p, size_t size);
/* mdl.c: frees every object of the model module on library unload. */
void mdl_release_all(void);
/* rt.c: frees every object of the runtime module on library unload. */
void rt_release_all(void);
void dataset_release_all(void);
/* core.c: around a run outside the lock. */
void standin_unlock(void);
void standin_lock(void);

#endif
