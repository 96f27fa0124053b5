/* Base values for `ckpt-synth init`: projections and embeddings ~ N(0, 0.02^2) (Hugging Face's
 * initializer_range), RMSNorm gains ~ 1 + N(0, 0.02^2), each element drawn from the counter-based
 * stream of (seed, tensor name) at its index; and the init command itself. */
#include "train/synth.h"

#include <stdlib.h>

#define SYNTH_DOMAIN_INIT 0x494E4954u /* "INIT" */
#define SYNTH_INIT_STD 0.02
#define SYNTH_NORM_STD 0.02

uint64_t synth_key(uint64_t seed, uint64_t domain, const char *name)
{
    /* FNV-1a over the name, then mixed with the seed and the domain. */
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001B3ull;
    return synth_mix64(synth_mix64(seed ^ (domain << 32)) ^ synth_mix64(h));
}

typedef struct InitCtx {
    const SynthTensor *tensors;
    uint64_t *keys; /* one stream key per tensor */
} InitCtx;

SYNTH_CLONES
static void init_fill(void *vctx, size_t ti, uint64_t first, uint64_t count, void *dst)
{
    const InitCtx *c = vctx;
    const SynthTensor *t = &c->tensors[ti];
    uint64_t key = c->keys[ti];
    double mean = t->kind == SYNTH_NORM ? 1.0 : 0.0;
    double std = t->kind == SYNTH_NORM ? SYNTH_NORM_STD : SYNTH_INIT_STD;
    switch (t->dtype) {
    case DT_BF16: {
        uint16_t *o = dst;
        for (uint64_t i = 0; i < count; i++) {
            double v = mean + std * synth_normal(synth_draw(key, first + i));
            o[i] = synth_f32_to_bf16((float)v);
        }
        break;
    }
    case DT_F16: {
        uint16_t *o = dst;
        for (uint64_t i = 0; i < count; i++) {
            double v = mean + std * synth_normal(synth_draw(key, first + i));
            o[i] = synth_f32_to_f16((float)v);
        }
        break;
    }
    default: { /* DT_F32 */
        float *o = dst;
        for (uint64_t i = 0; i < count; i++)
            o[i] = (float)(mean + std * synth_normal(synth_draw(key, first + i)));
        break;
    }
    }
}

int synth_init_run(const SynthInitOptions *o, SsError *err)
{
    if (o->dtype != DT_BF16 && o->dtype != DT_F16 && o->dtype != DT_F32)
        return ss_err(err, SS_EUSAGE, "--dtype must be bf16, f16 or f32");
    SynthLayout layout;
    int rc = synth_layout_build(&o->shape, o->dtype, &layout, err);
    if (rc)
        return rc;
    InitCtx ctx = {layout.tensors, calloc(layout.ntensors, sizeof(uint64_t))};
    if (!ctx.keys) {
        synth_layout_free(&layout);
        return ss_err(err, SS_EOUTPUT, "out of memory");
    }
    for (size_t i = 0; i < layout.ntensors; i++)
        ctx.keys[i] = synth_key(o->seed, SYNTH_DOMAIN_INIT, layout.tensors[i].name);
    rc = synth_checkpoint_write(layout.tensors, layout.ntensors, init_fill, &ctx, &o->write, err);
    if (rc == SS_OK && synth_out_is_folder(o->write.out))
        rc = synth_config_write(o->write.out, &o->shape, o->dtype, err);
    free(ctx.keys);
    synth_layout_free(&layout);
    return rc;
}
