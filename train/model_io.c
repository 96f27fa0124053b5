/* Parameters to and from safetensors checkpoints with the model's Hugging Face tensor names:
 * loading F32, BF16 or F16 (each value converted exactly), saving F32 as is or BF16 / F16 with
 * round to nearest even. */
#include "train/model.h"

#include "formats/dtype_convert.h"
#include "formats/dtype_encode.h"

#include <stdlib.h>
#include <string.h>

static void decode_to_f32(const StTensor *t, float *dst)
{
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    if (t->dtype == DT_F32) {
        memcpy(dst, p, n * sizeof(float));
    } else if (t->dtype == DT_BF16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t b = (uint32_t)h << 16;
            memcpy(&dst[i], &b, 4);
        }
    } else { /* F16: every value is a float32 exactly */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = (float)ss_f16_to_double(h);
        }
    }
}

int model_load_params(const Model *m, const char *path, float *params, SsError *err)
{
    StCheckpoint *ck;
    int rc = st_open(path, &ck, err);
    if (rc)
        return rc;
    /* Extra tensors first, so the message names them. */
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        if (model_find(m, t->name) < 0) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': not a tensor of this model%s", t->file,
                        t->name,
                        strcmp(t->name, "lm_head.weight") == 0 ? " (tie_word_embeddings is true)"
                                                               : "");
            goto done;
        }
    }
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *mt = &m->tensors[i];
        const StTensor *t = st_find(ck, mt->name);
        if (!t) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': missing", path, mt->name);
            goto done;
        }
        if (t->ndim != mt->ndim || t->shape[0] != mt->shape[0] ||
            (mt->ndim == 2 && t->shape[1] != mt->shape[1])) {
            char got[64], want[64];
            st_format_shape(got, sizeof got, t->ndim, t->shape);
            st_format_shape(want, sizeof want, mt->ndim, mt->shape);
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': shape %s, the model needs %s", t->file,
                        t->name, got, want);
            goto done;
        }
        if (t->dtype != DT_F32 && t->dtype != DT_BF16 && t->dtype != DT_F16) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': dtype %s, need F32, BF16 or F16",
                        t->file, t->name, dtype_name(t->dtype));
            goto done;
        }
        decode_to_f32(t, params + mt->offset);
    }
done:
    st_close(ck);
    return rc;
}

int model_save_params(const Model *m, const float *params, DType dt, const char *path,
                      const StMeta *meta, size_t nmeta, SsError *err)
{
    if (dt != DT_F32 && dt != DT_BF16 && dt != DT_F16)
        return ss_err(err, SS_EUSAGE, "%s: cannot save parameters as %s (F32, BF16 or F16)", path,
                      dtype_name(dt));
    StTensorSpec *specs = calloc(m->ntensors, sizeof *specs);
    const void **datas = calloc(m->ntensors, sizeof *datas);
    uint16_t *half = NULL;
    if (dt != DT_F32)
        half = malloc(m->nparams * sizeof *half);
    if (!specs || !datas || (dt != DT_F32 && !half)) {
        free(specs);
        free(datas);
        free(half);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    if (dt == DT_BF16)
        dtype_encode_bf16(params, half, m->nparams);
    else if (dt == DT_F16)
        dtype_encode_f16(params, half, m->nparams);
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *t = &m->tensors[i];
        specs[i] = (StTensorSpec){t->name, dt, t->ndim, t->shape};
        datas[i] = dt == DT_F32 ? (const void *)(params + t->offset)
                                : (const void *)(half + t->offset);
    }
    int rc = st_write(path, specs, datas, m->ntensors, meta, nmeta, err);
    free(specs);
    free(datas);
    free(half);
    return rc;
}
