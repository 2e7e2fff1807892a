/* Datasets and data buffers, the gear, and execution: aclmdlExecute checks every buffer against
 * the model, reads the gear back from the gear input's buffer, and runs the graph through
 * onnxruntime on the first `gear` rows of the buffers, in place. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

struct aclDataBuffer {
    void *data;
    size_t size;
};

struct aclmdlDataset {
    size_t count;
    aclDataBuffer *buffers[MAX_DATASET_BUFFERS];
    int64_t gear; /* set by aclmdlSetInputDynamicDims; 0: none */
};

static struct ptr_set g_datasets, g_buffers;


aclDataBuffer *aclCreateDataBuffer(void *data, size_t size) {
    aclDataBuffer *b = NULL;
    aclError rc = call_begin(FN_aclCreateDataBuffer, 1);
    if (rc == ACL_SUCCESS && (data || size)) rc = check_device_range(data, size, "aclCreateDataBuffer");
    if (rc == ACL_SUCCESS) {
        b = calloc(1, sizeof *b);
        if (!b || set_add(&g_buffers, b) != 0) {
            free(b);
            b = NULL;
            rc = fail(ACL_ERROR_BAD_ALLOC, "aclCreateDataBuffer: out of host memory");
        }
    }
    if (b) {
        b->data = data;
        b->size = size;
        g.stats.data_buffers++;
    }
    call_end(FN_aclCreateDataBuffer, rc, "%p, %zu -> %p", data, size, (void *)b);
    return b;
}

aclError aclDestroyDataBuffer(const aclDataBuffer *dataBuffer) {
    aclError rc = call_begin(FN_aclDestroyDataBuffer, 1);
    if (rc == ACL_SUCCESS && !set_has(&g_buffers, dataBuffer))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclDestroyDataBuffer: %p is not a live buffer",
                       (const void *)dataBuffer);
    if (rc == ACL_SUCCESS) {
        set_remove(&g_buffers, dataBuffer);
        free((void *)dataBuffer);
        g.stats.data_buffers--;
    }
    return call_end(FN_aclDestroyDataBuffer, rc, "%p", (const void *)dataBuffer);
}

aclmdlDataset *aclmdlCreateDataset(void) {
    aclmdlDataset *ds = NULL;
    aclError rc = call_begin(FN_aclmdlCreateDataset, 1);
    if (rc == ACL_SUCCESS) {
        ds = calloc(1, sizeof *ds);
        if (!ds || set_add(&g_datasets, ds) != 0) {
            free(ds);
            ds = NULL;
            rc = fail(ACL_ERROR_BAD_ALLOC, "aclmdlCreateDataset: out of host memory");
        }
    }
    if (ds) g.stats.datasets++;
    call_end(FN_aclmdlCreateDataset, rc, "%p", (void *)ds);
    return ds;
}

aclError aclmdlDestroyDataset(const aclmdlDataset *dataset) {
    aclError rc = call_begin(FN_aclmdlDestroyDataset, 1);
    if (rc == ACL_SUCCESS && !set_has(&g_datasets, dataset))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclmdlDestroyDataset: %p is not a live dataset",
                       (const void *)dataset);
    if (rc == ACL_SUCCESS) { /* its buffers are the caller's to destroy, as in AscendCL */
        set_remove(&g_datasets, dataset);
        free((void *)dataset);
        g.stats.datasets--;
    }
    return call_end(FN_aclmdlDestroyDataset, rc, "%p", (const void *)dataset);
}

aclError aclmdlAddDatasetBuffer(aclmdlDataset *dataset, aclDataBuffer *dataBuffer) {
    aclError rc = call_begin(FN_aclmdlAddDatasetBuffer, 1);
    if (rc == ACL_SUCCESS && (!set_has(&g_datasets, dataset) || !set_has(&g_buffers, dataBuffer)))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclmdlAddDatasetBuffer: dataset %p or buffer %p is not live",
                       (void *)dataset, (void *)dataBuffer);
    if (rc == ACL_SUCCESS && dataset->count == MAX_DATASET_BUFFERS)
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclmdlAddDatasetBuffer: more than %d buffers",
                  MAX_DATASET_BUFFERS);
    if (rc == ACL_SUCCESS) dataset->buffers[dataset->count++] = dataBuffer;
    return call_end(FN_aclmdlAddDatasetBuffer, rc, "%p, %p", (void *)dataset, (void *)dataBuffer);
}

/* Buffer `i` of a dataset: live, its memory live, at least `need` bytes; or a violation. */
static aclError check_buffer(const aclmdlDataset *ds, size_t i, size_t need, const char *what) {
    char where[96];
    const aclDataBuffer *b = ds->buffers[i];
    snprintf(where, sizeof where, "%s buffer %zu", what, i);
    if (!set_has(&g_buffers, b))
        return violation(ACL_ERROR_INVALID_PARAM, "%s was destroyed", where);
    if (b->size < need)
        return violation(ACL_ERROR_INVALID_PARAM, "%s has %zu bytes; the model's takes %zu", where,
                         b->size, need);
    return check_device_range(b->data, b->size, where);
}

aclError aclmdlSetInputDynamicDims(uint32_t modelId, aclmdlDataset *dataset, size_t index,
                                   const aclmdlIODims *dims) {
    aclError rc = call_begin(FN_aclmdlSetInputDynamicDims, 1);
    const char *f = "aclmdlSetInputDynamicDims";
    struct instance *inst = NULL;
    int64_t gear = 0;
    if (rc == ACL_SUCCESS && !(inst = find_instance(modelId)))
        rc = violation(ACL_ERROR_INVALID_MODEL_ID, "%s: no loaded model %u", f, modelId);
    if (rc == ACL_SUCCESS && (!set_has(&g_datasets, dataset) || !dims))
        rc = violation(ACL_ERROR_INVALID_PARAM, "%s: dataset %p is not live or dims NULL", f,
                       (void *)dataset);
    if (rc == ACL_SUCCESS) rc = require_context(f);
    if (rc == ACL_SUCCESS && index != GEAR_INPUT)
        rc = violation(ACL_ERROR_INVALID_PARAM, "%s: index %zu is not the gear input's (%s, %d)", f,
                       index, ACL_DYNAMIC_TENSOR_NAME, GEAR_INPUT);
    if (rc == ACL_SUCCESS && dataset->count <= index)
        rc = violation(ACL_ERROR_INVALID_PARAM, "%s: the dataset has %zu buffers, none at index %zu",
                       f, dataset->count, index);
    if (rc == ACL_SUCCESS &&
        !(gear = om_match_gear(&inst->om, dims->dims, dims->dimCount <= ACL_MAX_DIM_CNT
                                                          ? dims->dimCount : 0)))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "%s: dims (%zu of them, [%lld,%lld,%lld,...]) are not one of the model's "
                       "%zu gears [1,g,%lld,1,g]",
                       f, dims->dimCount, (long long)dims->dims[0], (long long)dims->dims[1],
                       (long long)dims->dims[2], inst->om.gear_count, (long long)inst->om.hidden);
    if (rc == ACL_SUCCESS) rc = check_buffer(dataset, index, om_input_size(&inst->om, index), f);
    if (rc == ACL_SUCCESS) { /* as AscendCL: the gear is data in the gear input's buffer */
        uint64_t values[GEAR_DIMS];
        for (size_t i = 0; i < GEAR_DIMS; i++) values[i] = (uint64_t)dims->dims[i];
        memcpy(dataset->buffers[index]->data, values, sizeof values);
        dataset->gear = gear;
    }
    return call_end(FN_aclmdlSetInputDynamicDims, rc, "%u, %p, %zu, gear %lld", modelId,
                    (void *)dataset, index, (long long)gear);
}

/* Every check an execute makes before running; the gear read back on success. */
static aclError check_execute(struct instance *inst, const aclmdlDataset *in,
                              const aclmdlDataset *out, int64_t *gear) {
    const char *f = "aclmdlExecute";
    aclError rc;
    if (inst->ctx != t_current)
        return violation(ACL_ERROR_RT_MODEL_CONTEXT,
                         "%s: model %u was loaded in context %p, not the current %p", f, inst->id,
                         (void *)inst->ctx, (void *)t_current);
    if (!set_has(&g_datasets, in) || !set_has(&g_datasets, out))
        return violation(ACL_ERROR_INVALID_PARAM, "%s: input %p or output %p is not a live dataset",
                         f, (const void *)in, (const void *)out);
    if (in->count != MODEL_INPUTS || out->count != MODEL_OUTPUTS)
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: datasets of %zu inputs and %zu outputs; the model has %d and %d", f,
                         in->count, out->count, MODEL_INPUTS, MODEL_OUTPUTS);
    for (size_t i = 0; i < MODEL_INPUTS; i++)
        if ((rc = check_buffer(in, i, om_input_size(&inst->om, i), "aclmdlExecute input")))
            return rc;
    if ((rc = check_buffer(out, 0, om_output_size(&inst->om), "aclmdlExecute output"))) return rc;
    if (!in->gear)
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: no gear set on this input dataset (aclmdlSetInputDynamicDims)", f);
    uint64_t values[GEAR_DIMS];
    int64_t dims[GEAR_DIMS];
    memcpy(values, in->buffers[GEAR_INPUT]->data, sizeof values);
    for (size_t i = 0; i < GEAR_DIMS; i++) dims[i] = (int64_t)values[i];
    if (!(*gear = om_match_gear(&inst->om, dims, GEAR_DIMS)))
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: the gear input's buffer no longer holds a gear (overwritten after "
                         "aclmdlSetInputDynamicDims)",
                         f);
    if (inst->busy)
        return violation(ACL_ERROR_INVALID_PARAM, "%s: model %u is executing on another thread", f,
                         inst->id);
    return ACL_SUCCESS;
}

aclError aclmdlExecute(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output) {
    aclError rc = call_begin(FN_aclmdlExecute, 1);
    struct instance *inst = NULL;
    int64_t gear = 0;
    if (rc == ACL_SUCCESS && !(inst = find_instance(modelId)))
        rc = violation(ACL_ERROR_INVALID_MODEL_ID, "aclmdlExecute: no loaded model %u", modelId);
    if (rc == ACL_SUCCESS) rc = require_context("aclmdlExecute");
    if (rc == ACL_SUCCESS) rc = check_execute(inst, input, output, &gear);
    if (rc == ACL_SUCCESS) {
        char err[512];
        float *hidden = input->buffers[0]->data, *mask = input->buffers[1]->data;
        float *out = output->buffers[0]->data;
        void *session = inst->weights->session;
        int64_t h = inst->om.hidden;
        /* onnxruntime runs outside the lock, so other instances run at the same time; `busy`
         * keeps this one from being unloaded or run twice meanwhile. */
        inst->busy = 1;
        standin_unlock();
        int failed = ort_run(session, hidden, mask, out, gear, h, err, sizeof err);
        standin_lock();
        inst->busy = 0;
        if (failed) rc = fail(ACL_ERROR_FAILURE, "aclmdlExecute: onnxruntime: %s", err);
    }
    if (rc == ACL_SUCCESS) {
        g.stats.executes++;
        g.stats.last_gear = (uint64_t)gear;
    }
    return call_end(FN_aclmdlExecute, rc, "%u, %p, %p, gear %lld", modelId, (const void *)input,
                    (void *)output, (long long)gear);
}

void dataset_release_all(void) {
    for (size_t i = 0; i < g_datasets.len; i++) free(g_datasets.items[i]);
    for (size_t i = 0; i < g_buffers.len; i++) free(g_buffers.items[i]);
    free(g_datasets.items);
    free(g_buffers.items);
    memset(&g_datasets, 0, sizeof g_datasets);
    memset(&g_buffers, 0, sizeof g_buffers);
}
