/* The training forward and backward pass on the chosen device (train/train_device.h): the CPU
 * model's model_forward / model_backward, or kernels/train_model.h's tm_forward / tm_backward on
 * backend copies of the weights and a backend gradient buffer. */
#include "train/train_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/model_internal.h"

struct TrainPass {
    const Model *m;
    TrainDeviceKind dev;
    /* --device cpu */
    ModelActs *acts;
    const float *host_w[2];  /* the loaded host weights, by TrainWeights */
    /* --device cuda */
    TrainModel *tm;
    float *dev_w[2];         /* (nparams) backend copies, by TrainWeights (REF: with_ref only) */
    float *dev_grads;        /* (nparams) */
    bool loaded[2];
    int last;                /* the weights of the last forward, -1 before the first */
    char what[128];
};

TmLayout train_device_layout(const Model *m, TmLayer *layers)
{
    const ModelImpl *im = model_impl(m);
    ModelDims d = model_dims(&m->cfg);
    for (size_t l = 0; l < d.L; l++) {
        const ModelLayerOff *o = &im->layer[l];
        layers[l] = (TmLayer){.in_norm = o->in_norm, .wqkv = o->wqkv,
                              .bqkv = im->qkv_bias ? o->bqkv : TM_ABSENT, .wo = o->wo,
                              .q_norm = im->qk_norm ? o->q_norm : TM_ABSENT,
                              .k_norm = im->qk_norm ? o->k_norm : TM_ABSENT,
                              .post_norm = o->post_norm, .wgu = o->wgu, .wd = o->wd};
    }
    return (TmLayout){.V = d.V, .H = d.H, .inter = d.I, .L = d.L, .Q = d.Q, .K = d.K, .D = d.D,
                      .nparams = m->nparams, .eps = m->cfg.rms_norm_eps,
                      .rope_theta = m->cfg.rope_theta, .qk_norm = im->qk_norm,
                      .qkv_bias = im->qkv_bias, .embed = im->embed, .norm = im->norm,
                      .lm_head = im->lm_head, .layer = layers};
}

/* TM_CUDA, or TM_CPU when SS_TRAIN_TM_BACKEND=cpu (the testing aid). */
static int device_backend(TmBackend *be, SsError *err)
{
    const char *env = getenv("SS_TRAIN_TM_BACKEND");
    *be = TM_CUDA;
    if (!env || !*env || strcmp(env, "cuda") == 0)
        return 0;
    if (strcmp(env, "cpu") == 0) {
        *be = TM_CPU;
        return 0;
    }
    return ss_err(err, SS_EUSAGE, "--device cuda: SS_TRAIN_TM_BACKEND='%s' (cpu, cuda, or unset)",
                  env);
}

/* The device side of train_pass_create. */
static int device_open(TrainPass *p, TmGemm gemm, int B, int T, bool with_ref, SsError *err)
{
    TmBackend be;
    int rc = device_backend(&be, err);
    if (rc != 0)
        return rc;
    if (be == TM_CPU && gemm == TM_GEMM_BF16)
        return ss_err(err, SS_EUSAGE, "--device cuda with SS_TRAIN_TM_BACKEND=cpu needs --gemm "
                      "f32 (bf16 GEMMs exist on the GPU only)");
    size_t L = (size_t)p->m->cfg.num_hidden_layers;
    TmLayer *layers = malloc(L * sizeof *layers);
    if (!layers)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    TmLayout lay = train_device_layout(p->m, layers);
    rc = tm_create(&lay, be, gemm, B, T, &p->tm, err);
    free(layers);
    if (rc != 0) {
        ss_err_prefix(err, "--device cuda");
        return rc;
    }
    size_t n = p->m->nparams;
    if (!(p->dev_w[TRAIN_W_POLICY] = tm_alloc(p->tm, n, err)) ||
        (with_ref && !(p->dev_w[TRAIN_W_REF] = tm_alloc(p->tm, n, err))) ||
        !(p->dev_grads = tm_alloc(p->tm, n, err))) {
        return ss_err_prefix(err, "--device cuda: %zu parameters", n);
    }
    snprintf(p->what, sizeof p->what, "cuda (%s GEMMs)%s", gemm == TM_GEMM_BF16 ? "bf16" : "f32",
             be == TM_CPU ? " on the CPU backend (SS_TRAIN_TM_BACKEND=cpu)" : "");
    return 0;
}

int train_pass_create(const Model *m, TrainDeviceKind dev, TmGemm gemm, int B, int T,
                      bool with_ref, TrainPass **out, SsError *err)
{
    *out = NULL;
    if (dev != TRAIN_DEVICE_CPU && dev != TRAIN_DEVICE_CUDA)
        return ss_err(err, SS_EUSAGE, "unknown training device %d", (int)dev);
    if (dev == TRAIN_DEVICE_CPU && gemm != TM_GEMM_F32)
        return ss_err(err, SS_EUSAGE, "--gemm bf16 needs --device cuda (the CPU model's GEMMs "
                      "are float32)");
    TrainPass *p = calloc(1, sizeof *p);
    if (!p)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    p->m = m;
    p->dev = dev;
    p->last = -1;
    int rc;
    if (dev == TRAIN_DEVICE_CPU) {
        snprintf(p->what, sizeof p->what, "cpu");
        rc = model_acts_create(m, B, T, &p->acts, err);
    } else {
        rc = device_open(p, gemm, B, T, with_ref, err);
    }
    if (rc != 0) {
        train_pass_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void train_pass_free(TrainPass *p)
{
    if (!p)
        return;
    model_acts_free(p->acts);
    if (p->tm) {
        for (int w = 0; w < 2; w++)
            if (p->dev_w[w])
                tm_release(p->tm, p->dev_w[w]);
        if (p->dev_grads)
            tm_release(p->tm, p->dev_grads);
        tm_free(p->tm);
    }
    free(p);
}

const char *train_pass_describe(const TrainPass *p)
{
    return p->what;
}

int train_pass_load(TrainPass *p, TrainWeights which, const float *w, SsError *err)
{
    if (which != TRAIN_W_POLICY && which != TRAIN_W_REF)
        return ss_err(err, SS_EUSAGE, "unknown weights %d", (int)which);
    if (p->dev == TRAIN_DEVICE_CPU) {
        p->host_w[which] = w;
    } else {
        if (!p->dev_w[which])
            return ss_err(err, SS_EUSAGE, "--device cuda: the pass has no room for reference "
                          "weights");
        int rc = tm_upload(p->tm, p->dev_w[which], w, p->m->nparams, err);
        if (rc != 0)
            return ss_err_prefix(err, "--device cuda: uploading the weights");
    }
    p->loaded[which] = true;
    return 0;
}

int train_pass_forward(TrainPass *p, TrainWeights which, const int32_t *tokens,
                       const int32_t *targets, int B, int T, float *logp, float *entropy,
                       SsError *err)
{
    if ((which != TRAIN_W_POLICY && which != TRAIN_W_REF) || !p->loaded[which])
        return ss_err(err, SS_EUSAGE, "train pass: forward with weights %d not loaded",
                      (int)which);
    p->last = (int)which;
    if (p->dev == TRAIN_DEVICE_CPU) {
        model_forward(p->m, p->host_w[which], tokens, targets, B, T, p->acts, logp, entropy);
        return 0;
    }
    int rc = tm_forward(p->tm, p->dev_w[which], tokens, targets, B, T, logp, entropy, err);
    return rc != 0 ? ss_err_prefix(err, "--device cuda: forward") : 0;
}

int train_pass_backward(TrainPass *p, const float *dlogp, float *grads, SsError *err)
{
    if (p->last < 0)
        return ss_err(err, SS_EUSAGE, "train pass: backward before a forward");
    size_t n = p->m->nparams;
    if (p->dev == TRAIN_DEVICE_CPU) {
        memset(grads, 0, n * sizeof(float));
        model_backward(p->m, p->host_w[p->last], p->acts, dlogp, grads);
        return 0;
    }
    int rc = tm_zero(p->tm, p->dev_grads, n, err);
    if (rc == 0)
        rc = tm_backward(p->tm, p->dev_w[p->last], dlogp, p->dev_grads, err);
    if (rc == 0)
        rc = tm_download(p->tm, grads, p->dev_grads, n, err);
    return rc != 0 ? ss_err_prefix(err, "--device cuda: backward") : 0;
}
