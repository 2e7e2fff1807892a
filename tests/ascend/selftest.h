/* The stand-in's self-test: a device model and sessions laid out as dbrt's design lays them out
 * (one weight memory per device model; per session its context, stream, work memory, instance,
 * datasets and buffers), and the checks shared by the test files. */
#ifndef DBRT_STANDIN_SELFTEST_H
#define DBRT_STANDIN_SELFTEST_H

#include <stddef.h>
#include <stdint.h>

#include "acl/acl.h"
#include "standin_control.h"

#define H 8 /* the tiny graph's hidden size */

extern int failures;
#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)
#define OK(call) CHECK((call) == ACL_SUCCESS, "%s failed: %s", #call, recent())

struct device {
    aclrtContext ctx;
    void *weight;
    size_t weight_size, work_size;
};

struct session {
    aclrtContext ctx;
    aclrtStream stream;
    void *work;
    uint32_t id;
    aclmdlDesc *desc;
    void *in_dev[3], *out_dev;
    size_t in_size[3], out_size;
    aclDataBuffer *in_buf[3], *out_buf;
    aclmdlDataset *in, *out;
    size_t gear_count;
    int64_t gears[100];
};

extern unsigned char *om_bytes;
extern size_t om_size;

const char *recent(void);
uint64_t violations(void);
/* Checks a call that must be caught: its code, one more violation, and the message. */
void expect_violation(uint64_t before, aclError rc, aclError code, const char *needle,
                      const char *what);
int device_open(struct device *dev);
void device_close(struct device *dev);
int session_open(struct device *dev, struct session *s);
void session_close(struct session *s);
/* Runs n random tokens through the smallest gear that holds them; checks the output. */
int session_run(struct session *s, size_t n, unsigned seed);
void expect_no_live_objects(const char *when);

void test_violations(void);
void test_injected_failures(void);

#endif
