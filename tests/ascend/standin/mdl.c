/* The model half of the stand-in: sizes, loading an instance on caller-given work and weight
 * memory (instances on one weight memory share it and one onnxruntime session), unloading, and
 * the model description dbrt reads the inputs, sizes and gears from. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

struct aclmdlDesc {
    int filled; /* by aclmdlGetDesc */
    struct om om;
};

static struct ptr_set g_instances, g_weights, g_descs;
static uint32_t g_next_id = 1;

struct instance *find_instance(uint32_t id) {
    for (size_t i = 0; i < g_instances.len; i++) {
        struct instance *inst = g_instances.items[i];
        if (inst->id == id) return inst;
    }
    return NULL;
}

static int overlaps(const void *a, size_t an, const void *b, size_t bn) {
    const char *x = a, *y = b;
    return an && bn && x < y + bn && y < x + an;
}

uint32_t model_using_memory(const void *p, size_t size) {
    for (size_t i = 0; i < g_instances.len; i++) {
        struct instance *inst = g_instances.items[i];
        if (overlaps(p, size, inst->work, inst->work_size) ||
            overlaps(p, size, inst->weights->base, inst->weights->size))
            return inst->id;
    }
    return 0;
}

aclError aclmdlQuerySizeFromMem(const void *model, size_t modelSize, size_t *workSize,
                                size_t *weightSize) {
    aclError rc = call_begin(FN_aclmdlQuerySizeFromMem, 1);
    struct om om;
    if (rc == ACL_SUCCESS && (!model || !modelSize || !workSize || !weightSize))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclmdlQuerySizeFromMem: NULL or empty argument");
    if (rc == ACL_SUCCESS) rc = om_parse(model, modelSize, &om, "aclmdlQuerySizeFromMem");
    if (rc == ACL_SUCCESS) {
        *workSize = om_work_size(&om);
        *weightSize = om_weight_size(&om);
    }
    return call_end(FN_aclmdlQuerySizeFromMem, rc, "%p, %zu, %zu, %zu", model, modelSize,
                    rc ? 0 : *workSize, rc ? 0 : *weightSize);
}

/* Checks the instance's memory against AscendCL's rules and the instances already loaded. */
static aclError check_load_memory(const struct om *om, void *work, size_t ws, void *weight,
                                  size_t wts, struct weights **shared) {
    const char *f = "aclmdlLoadFromMemWithMem";
    aclError rc;
    if (!work || !weight)
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: NULL %s memory (dbrt gives each instance its own work memory and "
                         "shares one weight memory)",
                         f, work ? "weight" : "work");
    if (ws < om_work_size(om))
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: work memory of %zu bytes, less than the %zu "
                         "aclmdlQuerySizeFromMem asked for",
                         f, ws, om_work_size(om));
    if (wts < om_weight_size(om))
        return violation(ACL_ERROR_INVALID_PARAM,
                         "%s: weight memory of %zu bytes, less than the %zu "
                         "aclmdlQuerySizeFromMem asked for",
                         f, wts, om_weight_size(om));
    if ((rc = check_device_range(work, ws, "aclmdlLoadFromMemWithMem work memory")) ||
        (rc = check_device_range(weight, wts, "aclmdlLoadFromMemWithMem weight memory")))
        return rc;
    if (overlaps(work, ws, weight, wts))
        return violation(ACL_ERROR_INVALID_PARAM, "%s: work and weight memory overlap", f);
    *shared = NULL;
    for (size_t i = 0; i < g_instances.len; i++) {
        struct instance *inst = g_instances.items[i];
        if (overlaps(work, ws, inst->work, inst->work_size) ||
            overlaps(work, ws, inst->weights->base, inst->weights->size))
            return violation(ACL_ERROR_INVALID_PARAM,
                             "%s: work memory %p overlaps memory model %u uses (work memory is "
                             "per instance)",
                             f, work, inst->id);
        if (overlaps(weight, wts, inst->work, inst->work_size))
            return violation(ACL_ERROR_INVALID_PARAM,
                             "%s: weight memory %p overlaps model %u's work memory", f, weight,
                             inst->id);
    }
    for (size_t i = 0; i < g_weights.len; i++) {
        struct weights *w = g_weights.items[i];
        if (!overlaps(weight, wts, w->base, w->size)) continue;
        if (w->base != weight || w->size != wts ||
            memcmp(w->base, om->onnx, om->onnx_len) != 0)
            return violation(ACL_ERROR_INVALID_PARAM,
                             "%s: weight memory %p (%zu bytes) is not the weight memory loaded "
                             "models of this same graph share",
                             f, weight, wts);
        *shared = w;
    }
    return ACL_SUCCESS;
}

static aclError new_weights(const struct om *om, void *weight, size_t wts, struct weights **out) {
    char err[512];
    struct weights *w = calloc(1, sizeof *w);
    if (!w || set_add(&g_weights, w) != 0) {
        free(w);
        return fail(ACL_ERROR_BAD_ALLOC, "aclmdlLoadFromMemWithMem: out of host memory");
    }
    w->base = weight;
    w->size = wts;
    memcpy(weight, om->onnx, om->onnx_len);
    w->crc = crc32_bytes(weight, om->onnx_len);
    if (ort_create(weight, om->onnx_len, &w->session, err, sizeof err) != 0) {
        set_remove(&g_weights, w);
        free(w);
        return fail(ACL_ERROR_INTERNAL_ERROR,
                    "aclmdlLoadFromMemWithMem: the stand-in cannot run the model: %s", err);
    }
    g.stats.ort_sessions++;
    *out = w;
    return ACL_SUCCESS;
}

aclError aclmdlLoadFromMemWithMem(const void *model, size_t modelSize, uint32_t *modelId,
                                  void *workPtr, size_t workSize, void *weightPtr,
                                  size_t weightSize) {
    aclError rc = call_begin(FN_aclmdlLoadFromMemWithMem, 1);
    struct om om;
    struct weights *w = NULL;
    struct instance *inst = NULL;
    if (rc == ACL_SUCCESS && (!model || !modelSize || !modelId))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclmdlLoadFromMemWithMem: NULL or empty argument");
    if (rc == ACL_SUCCESS) rc = require_context("aclmdlLoadFromMemWithMem");
    if (rc == ACL_SUCCESS) rc = om_parse(model, modelSize, &om, "aclmdlLoadFromMemWithMem");
    if (rc == ACL_SUCCESS)
        rc = check_load_memory(&om, workPtr, workSize, weightPtr, weightSize, &w);
    if (rc == ACL_SUCCESS && !(inst = calloc(1, sizeof *inst)))
        rc = fail(ACL_ERROR_BAD_ALLOC, "aclmdlLoadFromMemWithMem: out of host memory");
    if (rc == ACL_SUCCESS && !w) rc = new_weights(&om, weightPtr, weightSize, &w);
    if (rc == ACL_SUCCESS && set_add(&g_instances, inst) != 0)
        rc = fail(ACL_ERROR_BAD_ALLOC, "aclmdlLoadFromMemWithMem: out of host memory");
    if (rc == ACL_SUCCESS) {
        w->refs++;
        om.onnx = (const unsigned char *)w->base;
        *inst = (struct instance){.id = g_next_id++, .ctx = t_current, .work = workPtr,
                                  .work_size = workSize, .weights = w, .om = om};
        t_current->models++;
        g.stats.models++;
        *modelId = inst->id;
    } else {
        if (w && !w->refs) { /* made for this instance only */
            ort_release(w->session);
            g.stats.ort_sessions--;
            set_remove(&g_weights, w);
            free(w);
        }
        free(inst);
    }
    return call_end(FN_aclmdlLoadFromMemWithMem, rc, "%p, %zu, %u, %p, %zu, %p, %zu", model,
                    modelSize, inst && !rc ? inst->id : 0, workPtr, workSize, weightPtr,
                    weightSize);
}

aclError aclmdlUnload(uint32_t modelId) {
    aclError rc = call_begin(FN_aclmdlUnload, 1);
    struct instance *inst = NULL;
    if (rc == ACL_SUCCESS && !(inst = find_instance(modelId)))
        rc = violation(ACL_ERROR_INVALID_MODEL_ID, "aclmdlUnload: no loaded model %u", modelId);
    if (rc == ACL_SUCCESS) rc = require_context("aclmdlUnload");
    if (rc == ACL_SUCCESS && inst->ctx != t_current)
        rc = violation(ACL_ERROR_RT_MODEL_CONTEXT,
                       "aclmdlUnload: model %u was loaded in context %p, not the current %p",
                       modelId, (void *)inst->ctx, (void *)t_current);
    if (rc == ACL_SUCCESS && inst->busy)
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclmdlUnload: model %u is executing on another thread", modelId);
    if (rc == ACL_SUCCESS) {
        struct weights *w = inst->weights;
        /* Unloaded either way; a misuse found on the way is still reported. */
        if (!is_device_pointer(inst->work) || !is_device_pointer(w->base))
            rc = violation(ACL_ERROR_INVALID_PARAM,
                           "aclmdlUnload: model %u's work or weight memory was freed before it "
                           "was unloaded",
                           modelId);
        else if (w->refs == 1 && crc32_bytes(w->base, inst->om.onnx_len) != w->crc)
            rc = violation(ACL_ERROR_INVALID_PARAM,
                           "aclmdlUnload: model %u's weight memory was written while loaded",
                           modelId);
        if (--w->refs == 0) {
            ort_release(w->session);
            g.stats.ort_sessions--;
            set_remove(&g_weights, w);
            free(w);
        }
        inst->ctx->models--;
        set_remove(&g_instances, inst);
        free(inst);
        g.stats.models--;
    }
    return call_end(FN_aclmdlUnload, rc, "%u", modelId);
}

aclmdlDesc *aclmdlCreateDesc(void) {
    aclmdlDesc *desc = NULL;
    aclError rc = call_begin(FN_aclmdlCreateDesc, 1);
    if (rc == ACL_SUCCESS) {
        desc = calloc(1, sizeof *desc);
        if (!desc || set_add(&g_descs, desc) != 0) {
            free(desc);
            desc = NULL;
            rc = fail(ACL_ERROR_BAD_ALLOC, "aclmdlCreateDesc: out of host memory");
        }
    }
    if (desc) g.stats.descs++;
    call_end(FN_aclmdlCreateDesc, rc, "%p", (void *)desc);
    return desc;
}

aclError aclmdlDestroyDesc(aclmdlDesc *modelDesc) {
    aclError rc = call_begin(FN_aclmdlDestroyDesc, 1);
    if (rc == ACL_SUCCESS && !set_has(&g_descs, modelDesc))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclmdlDestroyDesc: %p is not a live desc",
                       (void *)modelDesc);
    if (rc == ACL_SUCCESS) {
        set_remove(&g_descs, modelDesc);
        free(modelDesc);
        g.stats.descs--;
    }
    return call_end(FN_aclmdlDestroyDesc, rc, "%p", (void *)modelDesc);
}

aclError aclmdlGetDesc(aclmdlDesc *modelDesc, uint32_t modelId) {
    aclError rc = call_begin(FN_aclmdlGetDesc, 1);
    struct instance *inst = NULL;
    if (rc == ACL_SUCCESS && !set_has(&g_descs, modelDesc))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclmdlGetDesc: %p is not a live desc",
                       (void *)modelDesc);
    if (rc == ACL_SUCCESS && !(inst = find_instance(modelId)))
        rc = violation(ACL_ERROR_INVALID_MODEL_ID, "aclmdlGetDesc: no loaded model %u", modelId);
    if (rc == ACL_SUCCESS) {
        modelDesc->om = inst->om;
        modelDesc->om.onnx = NULL;
        modelDesc->filled = 1;
    }
    return call_end(FN_aclmdlGetDesc, rc, "%p, %u", (void *)modelDesc, modelId);
}

/* A desc aclmdlGetDesc filled, or NULL after a violation naming `f`. */
static const struct om *described(const aclmdlDesc *desc, const char *f) {
    if (!set_has(&g_descs, desc) || !desc->filled) {
        violation(ACL_ERROR_INVALID_PARAM, "%s: %p is not a desc aclmdlGetDesc filled", f,
                  (const void *)desc);
        return NULL;
    }
    return &desc->om;
}

#define SIZE_QUERY(fn, expr)                                                                 \
    size_t n = 0;                                                                           \
    const struct om *om;                                                                    \
    if (call_begin(FN_##fn, 1) == ACL_SUCCESS && (om = described(modelDesc, #fn)) != NULL) \
        n = (expr);

size_t aclmdlGetNumInputs(aclmdlDesc *modelDesc) {
    SIZE_QUERY(aclmdlGetNumInputs, ((void)om, MODEL_INPUTS))
    call_end(FN_aclmdlGetNumInputs, 0, "%p -> %zu", (void *)modelDesc, n);
    return n;
}

size_t aclmdlGetNumOutputs(aclmdlDesc *modelDesc) {
    SIZE_QUERY(aclmdlGetNumOutputs, ((void)om, MODEL_OUTPUTS))
    call_end(FN_aclmdlGetNumOutputs, 0, "%p -> %zu", (void *)modelDesc, n);
    return n;
}

size_t aclmdlGetInputSizeByIndex(aclmdlDesc *modelDesc, size_t index) {
    SIZE_QUERY(aclmdlGetInputSizeByIndex, om_input_size(om, index))
    call_end(FN_aclmdlGetInputSizeByIndex, 0, "%p, %zu -> %zu", (void *)modelDesc, index, n);
    return n;
}

size_t aclmdlGetOutputSizeByIndex(aclmdlDesc *modelDesc, size_t index) {
    SIZE_QUERY(aclmdlGetOutputSizeByIndex, index == 0 ? om_output_size(om) : 0)
    call_end(FN_aclmdlGetOutputSizeByIndex, 0, "%p, %zu -> %zu", (void *)modelDesc, index, n);
    return n;
}

static const char *const INPUT_NAMES[MODEL_INPUTS] = {"hidden", "mask", ACL_DYNAMIC_TENSOR_NAME};

aclError aclmdlGetInputIndexByName(const aclmdlDesc *modelDesc, const char *name, size_t *index) {
    aclError rc = call_begin(FN_aclmdlGetInputIndexByName, 1);
    if (rc == ACL_SUCCESS && !described(modelDesc, "aclmdlGetInputIndexByName"))
        rc = ACL_ERROR_INVALID_PARAM;
    if (rc == ACL_SUCCESS && (!name || !index))
        rc = violation(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputIndexByName: NULL argument");
    if (rc == ACL_SUCCESS) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputIndexByName: no input named '%s'", name);
        for (size_t i = 0; i < MODEL_INPUTS; i++)
            if (strcmp(name, INPUT_NAMES[i]) == 0) *index = i, rc = ACL_SUCCESS;
    }
    return call_end(FN_aclmdlGetInputIndexByName, rc, "%p, %s, %zu", (const void *)modelDesc,
                    name ? name : "NULL", rc || !index ? (size_t)-1 : *index);
}

aclError aclmdlGetInputDynamicGearCount(const aclmdlDesc *modelDesc, size_t index,
                                        size_t *gearCount) {
    aclError rc = call_begin(FN_aclmdlGetInputDynamicGearCount, 1);
    const struct om *om = NULL;
    if (rc == ACL_SUCCESS && !(om = described(modelDesc, "aclmdlGetInputDynamicGearCount")))
        rc = ACL_ERROR_INVALID_PARAM;
    if (rc == ACL_SUCCESS && (index != (size_t)-1 || !gearCount))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclmdlGetInputDynamicGearCount: index must be -1 (reserved), output "
                       "non-NULL");
    if (rc == ACL_SUCCESS) *gearCount = om->gear_count;
    return call_end(FN_aclmdlGetInputDynamicGearCount, rc, "%p, %zd, %zu",
                    (const void *)modelDesc, (ssize_t)index, om && !rc ? om->gear_count : 0);
}

aclError aclmdlGetInputDynamicDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims,
                                   size_t gearCount) {
    aclError rc = call_begin(FN_aclmdlGetInputDynamicDims, 1);
    const struct om *om = NULL;
    if (rc == ACL_SUCCESS && !(om = described(modelDesc, "aclmdlGetInputDynamicDims")))
        rc = ACL_ERROR_INVALID_PARAM;
    if (rc == ACL_SUCCESS && (index != (size_t)-1 || !dims || gearCount != om->gear_count))
        rc = violation(ACL_ERROR_INVALID_PARAM,
                       "aclmdlGetInputDynamicDims: index must be -1, dims non-NULL and gearCount "
                       "%zu the model's %zu",
                       gearCount, om->gear_count);
    for (size_t k = 0; rc == ACL_SUCCESS && k < om->gear_count; k++) {
        int64_t gear = om->gears[k];
        memset(&dims[k], 0, sizeof dims[k]);
        dims[k].dimCount = GEAR_DIMS;
        int64_t d[GEAR_DIMS] = {1, gear, om->hidden, 1, gear};
        memcpy(dims[k].dims, d, sizeof d);
    }
    return call_end(FN_aclmdlGetInputDynamicDims, rc, "%p, %zd, %p, %zu", (const void *)modelDesc,
                    (ssize_t)index, (void *)dims, gearCount);
}

void mdl_release_all(void) {
    for (size_t i = 0; i < g_weights.len; i++) {
        /* onnxruntime's sessions are left alone: its library may be unloading too. */
        free(g_weights.items[i]);
    }
    for (size_t i = 0; i < g_instances.len; i++) free(g_instances.items[i]);
    for (size_t i = 0; i < g_descs.len; i++) free(g_descs.items[i]);
    free(g_weights.items);
    free(g_instances.items);
    free(g_descs.items);
    memset(&g_weights, 0, sizeof g_weights);
    memset(&g_instances, 0, sizeof g_instances);
    memset(&g_descs, 0, sizeof g_descs);
}
