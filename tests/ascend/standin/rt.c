/* The runtime half of the stand-in: devices, contexts, streams, the run mode, and "device"
 * memory, which is host memory handed out by aclrtMalloc and tracked block by block so that
 * every later use can be checked against it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct block {
    char *base;
    size_t size;
};
static struct block *g_blocks;
static size_t g_blocks_len, g_blocks_cap;

/* Recently freed blocks, to tell a use after free from a pointer never allocated. A new block
 * that overlaps one forgets it (its addresses are live again). */
#define FREED_KEPT 1024
static struct block g_freed[FREED_KEPT];
static size_t g_freed_next;

static struct block *find_block(const void *p) {
    const char *c = p;
    for (size_t i = 0; i < g_blocks_len; i++)
        if (c >= g_blocks[i].base && c < g_blocks[i].base + g_blocks[i].size) return &g_blocks[i];
    return NULL;
}

static int was_freed(const void *p) {
    const char *c = p;
    for (size_t i = 0; i < FREED_KEPT; i++)
        if (g_freed[i].size && c >= g_freed[i].base && c < g_freed[i].base + g_freed[i].size)
            return 1;
    return 0;
}

int is_device_pointer(const void *p) { return p && find_block(p) != NULL; }

aclError check_device_range(const void *p, size_t size, const char *what) {
    if (!p) return violation(ACL_ERROR_INVALID_PARAM, "%s: NULL device pointer", what);
    const struct block *b = find_block(p);
    if (!b) {
        if (was_freed(p))
            return violation(ACL_ERROR_INVALID_PARAM,
                             "%s: use after free: %p is in a block aclrtFree released", what, p);
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: unknown pointer %p: not memory from aclrtMalloc", what, p);
    }
    size_t left = (size_t)(b->base + b->size - (const char *)p);
    if (size > left)
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: %zu bytes at %p run past the end of its aclrtMalloc block "
                         "(%zu bytes, %zu left)",
                         what, size, p, b->size, left);
    return ACL_SUCCESS;
}

aclError require_context(const char *what) {
    if (!t_current)
        return violation(ACL_ERROR_RT_CONTEXT_NULL, "%s: the calling thread has no current context",
                         what);
    if (!set_has(&g.contexts, t_current))
        return violation(ACL_ERROR_RT_CONTEXT_NULL,
                         "%s: the calling thread's current context was destroyed", what);
    return ACL_SUCCESS;
}

static struct context *new_context(int32_t device, int is_default) {
    struct context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->device = device;
    ctx->is_default = is_default;
    if (set_add(&g.contexts, ctx) != 0) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void drop_context(struct context *ctx) {
    set_remove(&g.contexts, ctx);
    if (t_current == ctx) t_current = NULL;
    free(ctx);
}

aclError aclrtSetDevice(int32_t deviceId) {
    aclError rc = call_begin(FN_aclrtSetDevice, 1);
    if (rc == ACL_SUCCESS && (deviceId < 0 || deviceId >= MAX_DEVICES))
        rc = fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtSetDevice: no device %d (the stand-in has %d)",
                  deviceId, MAX_DEVICES);
    if (rc == ACL_SUCCESS && !g.default_context[deviceId]) {
        g.default_context[deviceId] = new_context(deviceId, 1);
        if (!g.default_context[deviceId])
            rc = fail(ACL_ERROR_BAD_ALLOC, "aclrtSetDevice: out of host memory");
    }
    if (rc == ACL_SUCCESS) {
        g.device_sets[deviceId]++;
        g.stats.devices++;
        t_current = g.default_context[deviceId]; /* as AscendCL: the default context is current */
    }
    return call_end(FN_aclrtSetDevice, rc, "%d", deviceId);
}

aclError aclrtResetDevice(int32_t deviceId) {
    aclError rc = call_begin(FN_aclrtResetDevice, 1);
    if (rc == ACL_SUCCESS && (deviceId < 0 || deviceId >= MAX_DEVICES || !g.device_sets[deviceId]))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtResetDevice(%d) without a matching aclrtSetDevice", deviceId);
    if (rc == ACL_SUCCESS) {
        g.stats.devices--;
        struct context *def = g.default_context[deviceId];
        if (--g.device_sets[deviceId] == 0 && def && !def->streams && !def->models) {
            drop_context(def);
            g.default_context[deviceId] = NULL;
        }
    }
    return call_end(FN_aclrtResetDevice, rc, "%d", deviceId);
}

aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId) {
    aclError rc = call_begin(FN_aclrtCreateContext, 1);
    struct context *ctx = NULL;
    if (rc == ACL_SUCCESS && !context)
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclrtCreateContext: NULL context output");
    if (rc == ACL_SUCCESS && (deviceId < 0 || deviceId >= MAX_DEVICES))
        rc = fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtCreateContext: no device %d", deviceId);
    if (rc == ACL_SUCCESS && !(ctx = new_context(deviceId, 0)))
        rc = fail(ACL_ERROR_BAD_ALLOC, "aclrtCreateContext: out of host memory");
    if (rc == ACL_SUCCESS) {
        g.stats.contexts++;
        t_current = ctx; /* as AscendCL: the new context becomes current */
        *context = ctx;
    }
    return call_end(FN_aclrtCreateContext, rc, "%p, %d", (void *)ctx, deviceId);
}

aclError aclrtDestroyContext(aclrtContext context) {
    aclError rc = call_begin(FN_aclrtDestroyContext, 1);
    struct context *ctx = context;
    if (rc == ACL_SUCCESS && (!set_has(&g.contexts, ctx) || ctx->is_default))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtDestroyContext: %p is not a live context from aclrtCreateContext",
                       context);
    if (rc == ACL_SUCCESS && (ctx->streams || ctx->models))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtDestroyContext: context %p still owns %llu stream(s) and %llu loaded "
                       "model(s)",
                       context, (unsigned long long)ctx->streams,
                       (unsigned long long)ctx->models);
    if (rc == ACL_SUCCESS) {
        drop_context(ctx);
        g.stats.contexts--;
    }
    return call_end(FN_aclrtDestroyContext, rc, "%p", context);
}

aclError aclrtSetCurrentContext(aclrtContext context) {
    aclError rc = call_begin(FN_aclrtSetCurrentContext, 1);
    if (rc == ACL_SUCCESS && !set_has(&g.contexts, context))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtSetCurrentContext: %p is not a live context", context);
    if (rc == ACL_SUCCESS) t_current = context;
    return call_end(FN_aclrtSetCurrentContext, rc, "%p", context);
}

aclError aclrtGetCurrentContext(aclrtContext *context) {
    aclError rc = call_begin(FN_aclrtGetCurrentContext, 1);
    if (rc == ACL_SUCCESS && !context)
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext: NULL output");
    if (rc == ACL_SUCCESS && !set_has(&g.contexts, t_current))
        rc = fail(ACL_ERROR_RT_CONTEXT_NULL, "aclrtGetCurrentContext: no current context");
    if (rc == ACL_SUCCESS) *context = t_current;
    return call_end(FN_aclrtGetCurrentContext, rc, "%p", (void *)t_current);
}

aclError aclrtCreateStream(aclrtStream *stream) {
    aclError rc = call_begin(FN_aclrtCreateStream, 1);
    struct stream *s = NULL;
    if (rc == ACL_SUCCESS && !stream)
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclrtCreateStream: NULL stream output");
    if (rc == ACL_SUCCESS) rc = require_context("aclrtCreateStream");
    if (rc == ACL_SUCCESS) {
        s = calloc(1, sizeof *s);
        if (!s || set_add(&g.streams, s) != 0) {
            free(s);
            s = NULL;
            rc = fail(ACL_ERROR_BAD_ALLOC, "aclrtCreateStream: out of host memory");
        }
    }
    if (rc == ACL_SUCCESS) {
        s->ctx = t_current;
        t_current->streams++;
        g.stats.streams++;
        *stream = s;
    }
    return call_end(FN_aclrtCreateStream, rc, "%p", (void *)s);
}

aclError aclrtDestroyStream(aclrtStream stream) {
    aclError rc = call_begin(FN_aclrtDestroyStream, 1);
    struct stream *s = stream;
    if (rc == ACL_SUCCESS && !set_has(&g.streams, s))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclrtDestroyStream: %p is not a live stream",
                       stream);
    if (rc == ACL_SUCCESS) rc = require_context("aclrtDestroyStream");
    if (rc == ACL_SUCCESS && s->ctx != t_current)
        rc = violation(ACL_ERROR_RT_STREAM_CONTEXT,
                       "aclrtDestroyStream: stream %p belongs to context %p, not the current %p",
                       stream, (void *)s->ctx, (void *)t_current);
    if (rc == ACL_SUCCESS) {
        s->ctx->streams--;
        set_remove(&g.streams, s);
        free(s);
        g.stats.streams--;
    }
    return call_end(FN_aclrtDestroyStream, rc, "%p", stream);
}

aclError aclrtGetRunMode(aclrtRunMode *runMode) {
    aclError rc = call_begin(FN_aclrtGetRunMode, 1);
    if (rc == ACL_SUCCESS && !runMode)
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclrtGetRunMode: NULL output");
    if (rc == ACL_SUCCESS) *runMode = (aclrtRunMode)g.run_mode;
    return call_end(FN_aclrtGetRunMode, rc, "%d", g.run_mode);
}

aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy) {
    aclError rc = call_begin(FN_aclrtMalloc, 1);
    void *p = NULL;
    if (rc == ACL_SUCCESS && (!devPtr || size == 0 || (unsigned)policy > 2))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtMalloc: bad arguments (output %p, size %zu, policy %d)",
                       (void *)devPtr, size, (int)policy);
    if (rc == ACL_SUCCESS) rc = require_context("aclrtMalloc");
    if (rc == ACL_SUCCESS && size > MAX_ALLOCATION)
        rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: %zu bytes is more than the "
                  "stand-in's device has", size);
    if (rc == ACL_SUCCESS && g_blocks_len == g_blocks_cap) {
        size_t cap = g_blocks_cap ? g_blocks_cap * 2 : 64;
        struct block *blocks = realloc(g_blocks, cap * sizeof *blocks);
        if (!blocks) rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: out of host memory");
        else g_blocks = blocks, g_blocks_cap = cap;
    }
    if (rc == ACL_SUCCESS && posix_memalign(&p, 64, size) != 0) {
        p = NULL;
        rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: out of host memory");
    }
    if (rc == ACL_SUCCESS) {
        /* Device memory is not zeroed: all-ones bytes are NaN as f32, so a read of memory
         * nobody wrote poisons the result. */
        memset(p, 0xff, size);
        g_blocks[g_blocks_len++] = (struct block){p, size};
        for (size_t i = 0; i < FREED_KEPT; i++) {
            struct block *f = &g_freed[i];
            if (f->size && f->base < (char *)p + size && (char *)p < f->base + f->size)
                f->size = 0;
        }
        g.stats.allocations++;
        g.stats.allocated_bytes += size;
        g.stats.allocations_total++;
        *devPtr = p;
    }
    return call_end(FN_aclrtMalloc, rc, "%p, %zu, %d", p, size, (int)policy);
}

aclError aclrtFree(void *devPtr) {
    aclError rc = call_begin(FN_aclrtFree, 1);
    struct block *b = NULL;
    uint32_t user = 0;
    if (rc == ACL_SUCCESS) rc = require_context("aclrtFree");
    if (rc == ACL_SUCCESS && !(b = find_block(devPtr)))
        rc = was_freed(devPtr)
                 ? violation(ACL_ERROR_INVALID_PARAM, "aclrtFree: double free of %p", devPtr)
                 : violation(ACL_ERROR_INVALID_PARAM,
                             "aclrtFree: unknown pointer %p: not memory from aclrtMalloc", devPtr);
    if (rc == ACL_SUCCESS && b->base != devPtr)
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtFree: %p is inside a block, not the start aclrtMalloc returned",
                       devPtr);
    if (rc == ACL_SUCCESS && (user = model_using_memory(b->base, b->size)) != 0)
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtFree: %p is work or weight memory of model %u, still loaded", devPtr,
                       user);
    if (rc == ACL_SUCCESS) {
        g_freed[g_freed_next] = *b;
        g_freed_next = (g_freed_next + 1) % FREED_KEPT;
        g.stats.allocations--;
        g.stats.allocated_bytes -= b->size;
        free(b->base);
        *b = g_blocks[--g_blocks_len];
    }
    return call_end(FN_aclrtFree, rc, "%p", devPtr);
}

aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count) {
    aclError rc = call_begin(FN_aclrtMemset, 1);
    if (rc == ACL_SUCCESS) rc = require_context("aclrtMemset");
    if (rc == ACL_SUCCESS && count > maxCount)
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclrtMemset: count %zu > maxCount %zu", count,
                       maxCount);
    if (rc == ACL_SUCCESS) rc = check_device_range(devPtr, maxCount, "aclrtMemset");
    if (rc == ACL_SUCCESS) memset(devPtr, value, count);
    return call_end(FN_aclrtMemset, rc, "%p, %zu, %d, %zu", devPtr, maxCount, value, count);
}

static const char *const KIND_NAMES[] = {"HOST_TO_HOST", "HOST_TO_DEVICE", "DEVICE_TO_HOST",
                                         "DEVICE_TO_DEVICE"};

/* Checks one side of a copy against what the kind and the run mode say it is. */
static aclError check_side(const void *p, size_t size, int should_be_device, const char *side,
                           aclrtMemcpyKind kind) {
    char what[96];
    snprintf(what, sizeof what, "aclrtMemcpy %s (%s)", side, KIND_NAMES[kind]);
    if (g.run_mode == ACL_DEVICE) /* the app's own memory is device memory too */
        return is_device_pointer(p) ? check_device_range(p, size, what) : ACL_SUCCESS;
    if (should_be_device) return check_device_range(p, size, what);
    if (is_device_pointer(p))
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: %p is device memory, but the kind says host memory", what, p);
    return ACL_SUCCESS;
}

aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count,
                     aclrtMemcpyKind kind) {
    aclError rc = call_begin(FN_aclrtMemcpy, 1);
    if (rc == ACL_SUCCESS) rc = require_context("aclrtMemcpy");
    if (rc == ACL_SUCCESS && (!dst || !src || (unsigned)kind > 3 || count > destMax))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtMemcpy: bad arguments (dst %p, destMax %zu, src %p, count %zu, "
                       "kind %d)",
                       dst, destMax, src, count, (int)kind);
    if (rc == ACL_SUCCESS && g.run_mode == ACL_DEVICE && kind != ACL_MEMCPY_DEVICE_TO_DEVICE)
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclrtMemcpy: kind %s in run mode ACL_DEVICE (the app runs on the device: "
                       "DEVICE_TO_DEVICE)",
                       KIND_NAMES[kind]);
    if (rc == ACL_SUCCESS)
        rc = check_side(dst, destMax,
                        kind == ACL_MEMCPY_HOST_TO_DEVICE || kind == ACL_MEMCPY_DEVICE_TO_DEVICE,
                        "destination", kind);
    if (rc == ACL_SUCCESS)
        rc = check_side(src, count,
                        kind == ACL_MEMCPY_DEVICE_TO_HOST || kind == ACL_MEMCPY_DEVICE_TO_DEVICE,
                        "source", kind);
    if (rc == ACL_SUCCESS && count) memmove(dst, src, count);
    return call_end(FN_aclrtMemcpy, rc, "%p, %zu, %p, %zu, %d", dst, destMax, src, count,
                    (int)kind);
}

/* On library unload: frees what callers left, so leak checkers report only their own. */
void rt_release_all(void) {
    for (size_t i = 0; i < g_blocks_len; i++) free(g_blocks[i].base);
    free(g_blocks);
    g_blocks = NULL;
    g_blocks_len = g_blocks_cap = 0;
    for (size_t i = 0; i < g.streams.len; i++) free(g.streams.items[i]);
    for (size_t i = 0; i < g.contexts.len; i++) free(g.contexts.items[i]);
    free(g.streams.items);
    free(g.contexts.items);
    memset(&g.streams, 0, sizeof g.streams);
    memset(&g.contexts, 0, sizeof g.contexts);
}
