/* The stand-in AscendCL library's control API, for tests: exported by the same libascendcl.so,
 * so a test that dlopens the path dbrt loaded reaches the same instance. */
#ifndef DBRT_STANDIN_CONTROL_H
#define DBRT_STANDIN_CONTROL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Counters and live objects. Every field is a uint64_t, in this order, so that a Rust test can
 * mirror it as a #[repr(C)] struct of u64. Live counts are not touched by standin_reset. */
struct standin_stats {
    uint64_t allocations;       /* live aclrtMalloc blocks */
    uint64_t allocated_bytes;   /* their bytes */
    uint64_t contexts;          /* live contexts made by aclrtCreateContext */
    uint64_t streams;           /* live streams */
    uint64_t models;            /* loaded model instances */
    uint64_t descs;             /* live aclmdlDesc */
    uint64_t datasets;          /* live aclmdlDataset */
    uint64_t data_buffers;      /* live aclDataBuffer */
    uint64_t devices;           /* aclrtSetDevice calls not yet matched by aclrtResetDevice */
    uint64_t ort_sessions;      /* live onnxruntime sessions (one per shared weight memory) */
    uint64_t violations;        /* misuses caught since the last reset */
    uint64_t executes;          /* successful aclmdlExecute calls since the last reset */
    uint64_t last_gear;         /* sequence length of the last successful execute (0: none) */
    uint64_t calls_total;       /* calls of every AscendCL function since the last reset */
    uint64_t allocations_total; /* successful aclrtMalloc calls since the last reset */
};

/* Zeroes the counters (calls, violations, executes, last gear), clears pending failures and
 * truncates the log; live objects stay as they are. */
void standin_reset(void);
/* The nth call from now (1: the next) of `function` returns `error` (pointer-returning functions
 * return NULL, size-returning ones 0) and aclGetRecentErrMsg says
 * "injected failure of <function> (<error>)". nth 0 clears it. */
void standin_fail(const char *function, uint32_t nth, int32_t error);
/* What aclrtGetRunMode answers (ACL_HOST by default) and which memcpy kinds are right. */
void standin_set_run_mode(int32_t mode);
void standin_get_stats(struct standin_stats *out);
/* Calls of `function` since the last reset (0 for a name the stand-in does not export). */
uint64_t standin_calls(const char *function);
/* The text of the last violation since the last reset ("" if none). */
const char *standin_last_violation(void);

#ifdef __cplusplus
}
#endif
#endif
