/* The stand-in's models: the fake ATC's container, loaded instances, and onnxruntime. */
#ifndef DBRT_STANDIN_MODEL_H
#define DBRT_STANDIN_MODEL_H

#include "internal.h"

/* Inputs: hidden [1,S,H] f32, mask [1,S] f32, the gear; output: last_hidden [1,S,H] f32. */
#define MODEL_INPUTS 3
#define MODEL_OUTPUTS 1
#define GEAR_INPUT 2
/* A gear's dims as AscendCL lists them: every input's dims, concatenated: [1,g,H,1,g]. */
#define GEAR_DIMS 5

/* What the fake ATC's container (`DBRT-STANDIN-OM 1`) says. */
struct om {
    char soc_version[64];
    int64_t hidden; /* H */
    size_t gear_count;
    int64_t gears[MAX_GEARS]; /* sequence lengths, in the order ATC was given them */
    int64_t largest;
    const unsigned char *onnx; /* inside the caller's bytes until loaded, then weight memory */
    size_t onnx_len;
};

/* Parses a container: ACL_SUCCESS or ACL_ERROR_PARSE_MODEL with the reason as the thread's
 * recent error message. */
aclError om_parse(const void *model, size_t size, struct om *out, const char *what);
size_t om_work_size(const struct om *om);
size_t om_weight_size(const struct om *om);
size_t om_input_size(const struct om *om, size_t index);
size_t om_output_size(const struct om *om);
/* Whether (dims, count) is one of the model's gears; its sequence length or 0. */
int64_t om_match_gear(const struct om *om, const int64_t *dims, size_t count);
uint32_t crc32_bytes(const void *data, size_t len);

/* An onnxruntime session, shared by every instance loaded on one weight memory. */
struct weights {
    char *base;
    size_t size;
    uint32_t refs;
    uint32_t crc; /* of the graph copied in, checked again when the last instance unloads */
    void *session;
};

struct instance {
    uint32_t id;
    struct context *ctx;
    char *work;
    size_t work_size;
    struct weights *weights;
    struct om om;
    int busy; /* inside aclmdlExecute */
};

/* mdl.c: the loaded instance with this id, or NULL. */
struct instance *find_instance(uint32_t id);

/* ort.c. Each returns 0 or -1 with the reason in err. */
int ort_create(const void *onnx, size_t len, void **session, char *err, size_t err_len);
void ort_release(void *session);
int ort_run(void *session, float *hidden, float *mask, float *out, int64_t seq, int64_t hidden_size,
            char *err, size_t err_len);

#endif
