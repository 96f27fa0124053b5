/* LoRA (train/lora.h): the targets and the factor buffer's layout, PEFT's initialization, the
 * merge W = W0 + s B A, the factors' gradients, and the PEFT adapter files. */
#include "train/lora.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "formats/safetensors.h"
#include "train/rng.h"
#include "train/train_internal.h"

static const char *const lora_modules[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                           "gate_proj", "up_proj", "down_proj"};
#define LORA_NMODULES (sizeof lora_modules / sizeof lora_modules[0])

/* ---- targets and layout ---- */

bool lora_is_target(const char *name)
{
    if (strncmp(name, "model.layers.", 13) != 0)
        return false;
    size_t n = strlen(name);
    for (size_t i = 0; i < LORA_NMODULES; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, ".%s.weight", lora_modules[i]);
        size_t k = strlen(suffix);
        if (n > k && strcmp(name + n - k, suffix) == 0)
            return true;
    }
    return false;
}

int lora_create(const Model *m, int r, double alpha, Lora **out, SsError *err)
{
    *out = NULL;
    if (r < 1)
        return ss_err(err, SS_EUSAGE, "LoRA rank %d: must be at least 1", r);
    if (!(alpha > 0) || !isfinite(alpha))
        return ss_err(err, SS_EUSAGE, "LoRA alpha %g: must be positive and finite", alpha);
    Lora *l = calloc(1, sizeof *l);
    if (!l || !(l->targets = calloc(m->ntensors, sizeof *l->targets))) {
        free(l);
        return ss_err(err, SS_EOUTPUT, "out of memory");
    }
    l->r = r;
    l->alpha = alpha;
    l->scale = (float)(alpha / r);
    size_t off = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *t = &m->tensors[i];
        if (t->ndim != 2 || !lora_is_target(t->name))
            continue;
        LoraTarget *lt = &l->targets[l->ntargets++];
        lt->tensor = i;
        lt->out = (size_t)t->shape[0];
        lt->in = (size_t)t->shape[1];
        lt->a_off = off;
        off += (size_t)r * lt->in;
        lt->b_off = off;
        off += lt->out * (size_t)r;
    }
    l->nfactors = off;
    if (l->ntargets == 0) {
        lora_free(l);
        return ss_err(err, SS_EUSAGE, "the model has no linear projection to adapt");
    }
    *out = l;
    return 0;
}

void lora_free(Lora *l)
{
    if (!l)
        return;
    free(l->targets);
    free(l);
}

/* ---- initialization, merge, gradients ---- */

void lora_init(const Lora *l, float *factors, uint64_t seed)
{
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        uint64_t key = rng_stream(seed, LORA_RNG_PURPOSE, t, 0);
        double bound = 1.0 / sqrt((double)lt->in);
        float *a = factors + lt->a_off;
        for (size_t j = 0; j < (size_t)l->r * lt->in; j++)
            a[j] = (float)((2.0 * rng_uniform(key, j) - 1.0) * bound);
        memset(factors + lt->b_off, 0, lt->out * (size_t)l->r * sizeof(float));
    }
}

void lora_merge(const Model *m, const Lora *l, const float *base, const float *factors,
                float *params)
{
    memcpy(params, base, m->nparams * sizeof(float));
    int r = l->r;
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        float *w = params + m->tensors[lt->tensor].offset;           // (out, in)
        const float *a = factors + lt->a_off, *b = factors + lt->b_off; // (r, in), (out, r)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)lt->out, (int)lt->in, r,
                    l->scale, b, r, a, (int)lt->in, 1.0f, w, (int)lt->in);
    }
}

void lora_backward(const Model *m, const Lora *l, const float *factors, const float *grads,
                   float *dfactors)
{
    int r = l->r;
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        const float *dw = grads + m->tensors[lt->tensor].offset;     // (out, in)
        const float *a = factors + lt->a_off, *b = factors + lt->b_off; // (r, in), (out, r)
        int out = (int)lt->out, in = (int)lt->in;
        /* dA (r, in) = s B^T dW */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in, out, l->scale, b, r, dw, in,
                    0.0f, dfactors + lt->a_off, in);
        /* dB (out, r) = s dW A^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, out, r, in, l->scale, dw, in, a, in,
                    0.0f, dfactors + lt->b_off, r);
    }
}

/* ---- files ---- */

void lora_factor_name(const Model *m, const LoraTarget *t, bool b, char *buf, size_t cap)
{
    const char *name = m->tensors[t->tensor].name;
    size_t n = strlen(name) - strlen(".weight"); /* targets end in ".weight" */
    snprintf(buf, cap, "base_model.model.%.*s.%s.weight", (int)n, name, b ? "lora_B" : "lora_A");
}

#define LORA_NAME_CAP 192

int lora_save_factors(const Model *m, const Lora *l, const float *factors, const char *path,
                      SsError *err)
{
    size_t n = 2 * l->ntargets;
    StTensorSpec *specs = calloc(n, sizeof *specs);
    const void **datas = calloc(n, sizeof *datas);
    char (*names)[LORA_NAME_CAP] = calloc(n, sizeof *names);
    uint64_t (*shapes)[2] = calloc(n, sizeof *shapes);
    int rc;
    if (!specs || !datas || !names || !shapes) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        goto done;
    }
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        for (int k = 0; k < 2; k++) {
            size_t i = 2 * t + (size_t)k;
            lora_factor_name(m, lt, k == 1, names[i], LORA_NAME_CAP);
            shapes[i][0] = k == 0 ? (uint64_t)l->r : lt->out;
            shapes[i][1] = k == 0 ? lt->in : (uint64_t)l->r;
            specs[i] = (StTensorSpec){names[i], DT_F32, 2, shapes[i]};
            datas[i] = factors + (k == 0 ? lt->a_off : lt->b_off);
        }
    }
    StMeta meta[] = {{"format", "pt"}};
    rc = st_write(path, specs, datas, n, meta, 1, err);
done:
    free(specs);
    free(datas);
    free(names);
    free(shapes);
    return rc;
}

int lora_load_factors(const Model *m, const Lora *l, const char *path, float *factors,
                      SsError *err)
{
    StCheckpoint *ck;
    int rc = st_open(path, &ck, err);
    if (rc != 0)
        return rc;
    if (ck->ntensors != 2 * l->ntargets) {
        rc = ss_err(err, SS_EINPUT, "%s: %zu tensors, expected %zu LoRA factors (rank %d)",
                    path, ck->ntensors, 2 * l->ntargets, l->r);
        goto done;
    }
    for (size_t t = 0; t < l->ntargets && rc == 0; t++) {
        const LoraTarget *lt = &l->targets[t];
        for (int k = 0; k < 2; k++) {
            char name[LORA_NAME_CAP];
            lora_factor_name(m, lt, k == 1, name, sizeof name);
            uint64_t rows = k == 0 ? (uint64_t)l->r : lt->out;
            uint64_t cols = k == 0 ? lt->in : (uint64_t)l->r;
            const StTensor *st = st_find(ck, name);
            if (!st) {
                rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': missing", path, name);
                break;
            }
            if (st->dtype != DT_F32 || st->ndim != 2 || st->shape[0] != rows ||
                st->shape[1] != cols) {
                char shape[64];
                rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': %s %s, expected F32 [%llu, %llu]",
                            path, name, dtype_name(st->dtype),
                            st_format_shape(shape, sizeof shape, st->ndim, st->shape),
                            (unsigned long long)rows, (unsigned long long)cols);
                break;
            }
            memcpy(factors + (k == 0 ? lt->a_off : lt->b_off), st->data, st->nbytes);
        }
    }
done:
    st_close(ck);
    return rc;
}

int lora_save_adapter(const Model *m, const Lora *l, const float *factors, const char *dir,
                      const char *base_name, SsError *err)
{
    int rc = train_mkdir(dir, err);
    if (rc != 0)
        return rc;
    char *wpath = train_path(dir, "adapter_model.safetensors");
    char *cpath = train_path(dir, "adapter_config.json");
    if (!wpath || !cpath) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    if ((rc = lora_save_factors(m, l, factors, wpath, err)) != 0)
        goto done;
    json_t *mods = json_array();
    for (size_t i = 0; i < LORA_NMODULES; i++)
        json_array_append_new(mods, json_string(lora_modules[i]));
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:i, s:f, s:o, s:f, s:s, s:b, s:b, s:b, s:b, s:b}",
                            "peft_type", "LORA", "task_type", "CAUSAL_LM",
                            "base_model_name_or_path", base_name ? base_name : "", "r", l->r,
                            "lora_alpha", l->alpha, "target_modules", mods, "lora_dropout", 0.0,
                            "bias", "none", "fan_in_fan_out", 0, "use_rslora", 0, "use_dora", 0,
                            "init_lora_weights", 1, "inference_mode", 1);
    if (!cfg) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", cpath);
        goto done;
    }
    rc = train_write_json(cpath, cfg, err);
done:
    free(wpath);
    free(cpath);
    return rc;
}
