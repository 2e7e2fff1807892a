/*
 * tbcount: a qemu-user TCG plugin that counts how often every translated block runs.
 *
 * At exit it writes one line per translation, "vaddr n_insns count" (hex, dec, dec), to the file
 * named by its argument out=PATH, plus a "total N" line with the executed-instruction count.
 * A guest can also ask for a snapshot of the counts so far, without leaving: the system call
 * getpid with the arguments (MARK, k) writes them to PATH.k (benches/qemu/ort_count.c does, so
 * one process yields the counts after its first and after its last inference). The
 * attribution to functions and loops is done afterwards (benches/arm_mca.py) from the
 * disassembly: a block's instructions are consecutive 4-byte aarch64 instructions, each executed
 * `count` times. Counting is an inline add per block (no helper call), so runs stay fast.
 *
 * Built against qemu's plugin ABI version 1 (qemu 7.2, Debian bookworm's qemu-user). Only the
 * handful of declarations used are restated below, so no qemu header is needed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                                              uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7,
                                              uint64_t a8);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* One record per translation; records live in chunks that are never freed or moved, so the
 * inline counter's address stays valid for as long as the translated code can run. */
struct rec {
    uint64_t vaddr;
    uint64_t count;
    uint32_t n;
};
#define CHUNK 65536
struct chunk {
    struct chunk *next;
    size_t used;
    struct rec recs[CHUNK];
};
static struct chunk *chunks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char out_path[4096];

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    pthread_mutex_lock(&lock);
    if (!chunks || chunks->used == CHUNK) {
        struct chunk *c = calloc(1, sizeof *c);
        if (!c) {
            pthread_mutex_unlock(&lock);
            return; /* out of memory: this block goes uncounted */
        }
        c->next = chunks;
        chunks = c;
    }
    struct rec *r = &chunks->recs[chunks->used++];
    pthread_mutex_unlock(&lock);
    r->vaddr = qemu_plugin_tb_vaddr(tb);
    r->n = (uint32_t)qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &r->count, 1);
}

static void dump(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    uint64_t total = 0;
    for (struct chunk *c = chunks; c; c = c->next)
        for (size_t i = 0; i < c->used; i++) {
            const struct rec *r = &c->recs[i];
            if (!r->count)
                continue;
            total += r->count * r->n;
            fprintf(f, "%" PRIx64 " %" PRIu32 " %" PRIu64 "\n", r->vaddr, r->n, r->count);
        }
    fprintf(f, "total %" PRIu64 "\n", total);
    fclose(f);
}

static void at_exit_dump(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    dump(out_path);
}

#define MARK 0xdb12c0deu
#define NR_GETPID 172 /* aarch64 */

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num != NR_GETPID || a1 != MARK)
        return;
    char path[4200];
    snprintf(path, sizeof path, "%s.%" PRIu64, out_path, a2);
    pthread_mutex_lock(&lock);
    dump(path);
    pthread_mutex_unlock(&lock);
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    snprintf(out_path, sizeof out_path, "tbcount.out");
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "out=", 4))
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit_dump, NULL);
    return 0;
}
