/* The stand-in's bookkeeping: the lock, call counts, injected failures, violations, the log, the
 * control API for tests, and aclInit/aclFinalize/aclGetRecentErrMsg. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct standin g = {.run_mode = ACL_HOST};
_Thread_local struct context *t_current;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* The recent error message is per thread, as AscendCL's is. */
static _Thread_local char t_errmsg[512];
static FILE *g_log;
static int g_log_opened;
static char g_log_path[4096];

static const char *const g_names[FN_COUNT] = {
#define STANDIN_NAME(name) #name,
    STANDIN_FUNCTIONS(STANDIN_NAME)
#undef STANDIN_NAME
};

int set_add(struct ptr_set *set, void *item) {
    if (set->len == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        void **items = realloc(set->items, cap * sizeof *items);
        if (!items) return -1;
        set->items = items;
        set->cap = cap;
    }
    set->items[set->len++] = item;
    return 0;
}

int set_has(const struct ptr_set *set, const void *item) {
    if (!item) return 0;
    for (size_t i = 0; i < set->len; i++)
        if (set->items[i] == item) return 1;
    return 0;
}

void set_remove(struct ptr_set *set, const void *item) {
    for (size_t i = 0; i < set->len; i++) {
        if (set->items[i] == item) {
            set->items[i] = set->items[--set->len];
            return;
        }
    }
}

/* Opens the log DBRT_ACL_STANDIN_LOG names, once (lock held). */
static void open_log(void) {
    if (g_log_opened) return;
    g_log_opened = 1;
    const char *path = getenv("DBRT_ACL_STANDIN_LOG");
    if (!path || !*path || strlen(path) >= sizeof g_log_path) return;
    strcpy(g_log_path, path);
    g_log = fopen(g_log_path, "a");
}

static void vlog_line(const char *fmt, va_list ap) {
    if (!g_log) return;
    vfprintf(g_log, fmt, ap);
    fputc('\n', g_log);
    fflush(g_log);
}

void log_line(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap);
    va_end(ap);
}

static void set_errmsg(const char *fmt, va_list ap) {
    vsnprintf(t_errmsg, sizeof t_errmsg, fmt, ap);
}

aclError violation(aclError code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g.last_violation, sizeof g.last_violation, fmt, ap);
    va_end(ap);
    snprintf(t_errmsg, sizeof t_errmsg, "%s", g.last_violation);
    g.stats.violations++;
    log_line("VIOLATION %s (%d)", g.last_violation, code);
    return code;
}

aclError fail(aclError code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_errmsg(fmt, ap);
    va_end(ap);
    return code;
}

aclError call_begin(enum fn_id id, int needs_init) {
    pthread_mutex_lock(&g_lock);
    open_log();
    g.calls[id]++;
    g.stats.calls_total++;
    if (g.fail_nth[id] > 0 && --g.fail_nth[id] == 0) {
        int32_t error = g.fail_error[id];
        snprintf(t_errmsg, sizeof t_errmsg, "injected failure of %s (%d)", g_names[id], error);
        log_line("INJECTED %s (%d)", g_names[id], error);
        return error;
    }
    if (needs_init && !g.initialized)
        return violation(ACL_ERROR_UNINITIALIZE, "%s called before aclInit", g_names[id]);
    return ACL_SUCCESS;
}

aclError call_end(enum fn_id id, aclError rc, const char *fmt, ...) {
    if (g_log) {
        fprintf(g_log, "%s(", g_names[id]);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(g_log, fmt, ap);
        va_end(ap);
        fprintf(g_log, ") = %d\n", rc);
        fflush(g_log);
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

aclError aclInit(const char *configPath) {
    aclError rc = call_begin(FN_aclInit, 0);
    if (rc == ACL_SUCCESS) {
        if (g.finalized)
            rc = violation(ACL_ERROR_REPEAT_FINALIZE, "aclInit after aclFinalize");
        else if (g.initialized)
            rc = fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: already initialized");
        else
            g.initialized = 1;
    }
    return call_end(FN_aclInit, rc, "%s", configPath ? configPath : "NULL");
}

aclError aclFinalize(void) {
    aclError rc = call_begin(FN_aclFinalize, 1);
    if (rc == ACL_SUCCESS) {
        g.initialized = 0;
        g.finalized = 1;
    }
    return call_end(FN_aclFinalize, rc, "%s", "");
}

const char *aclGetRecentErrMsg(void) { return t_errmsg[0] ? t_errmsg : NULL; }

static int find_function(const char *name) {
    for (int i = 0; name && i < FN_COUNT; i++)
        if (strcmp(g_names[i], name) == 0) return i;
    return -1;
}

void standin_reset(void) {
    pthread_mutex_lock(&g_lock);
    memset(g.calls, 0, sizeof g.calls);
    memset(g.fail_nth, 0, sizeof g.fail_nth);
    g.stats.violations = g.stats.executes = g.stats.last_gear = 0;
    g.stats.calls_total = g.stats.allocations_total = 0;
    g.last_violation[0] = 0;
    open_log();
    if (g_log) {
        FILE *log = freopen(g_log_path, "w", g_log);
        g_log = log;
    }
    pthread_mutex_unlock(&g_lock);
}

void standin_fail(const char *function, uint32_t nth, int32_t error) {
    pthread_mutex_lock(&g_lock);
    int id = find_function(function);
    if (id >= 0) {
        g.fail_nth[id] = nth;
        g.fail_error[id] = error;
    }
    pthread_mutex_unlock(&g_lock);
}

void standin_set_run_mode(int32_t mode) {
    pthread_mutex_lock(&g_lock);
    g.run_mode = mode;
    pthread_mutex_unlock(&g_lock);
}

void standin_get_stats(struct standin_stats *out) {
    if (!out) return;
    pthread_mutex_lock(&g_lock);
    *out = g.stats;
    pthread_mutex_unlock(&g_lock);
}

uint64_t standin_calls(const char *function) {
    pthread_mutex_lock(&g_lock);
    int id = find_function(function);
    uint64_t n = id >= 0 ? g.calls[id] : 0;
    pthread_mutex_unlock(&g_lock);
    return n;
}

const char *standin_last_violation(void) {
    /* The buffer lives as long as the library; a test reads it between calls. */
    return g.last_violation;
}

/* On unload of the library: what is still held (so leak checkers see only the caller's). */
__attribute__((destructor)) static void standin_unload(void) {
    pthread_mutex_lock(&g_lock);
    mdl_release_all();
    rt_release_all();
    dataset_release_all();
    if (g_log) fclose(g_log);
    g_log = NULL;
    pthread_mutex_unlock(&g_lock);
}

void standin_unlock(void) { pthread_mutex_unlock(&g_lock); }
void standin_lock(void) { pthread_mutex_lock(&g_lock); }
