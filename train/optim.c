/* The optimizers (train/optim.h): torch 1.13's single-tensor SGD and AdamW, element by element.
 *
 * How torch computes (checked against torch 1.13 on x86-64 with its AVX2 kernels): python scalars
 * are doubles and are combined in double, then rounded to float once when they meet a float32
 * tensor; tensor.add_(t, alpha=a) is fmaf(t, a, self) and tensor.addcmul_(t1, t2, value=v) is
 * fmaf(v * t1, t2, self) (the compiler contracts both into fused multiply-adds, in the vector
 * loop and in its scalar tail alike); addcdiv_ is self + (v * t1) / t2 (nothing to fuse). This
 * file is built with -ffp-contract=off and writes each fused operation as an explicit fmaf, so
 * every target_clones variant gives the same bits. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define OPT_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define OPT_CLONES
#endif

#define OPT_NORM_BLOCK 4096 /* the fixed blocks of the gradient norm's double sum */

static const char OPT_MAGIC[8] = {'S', 'S', 'O', 'P', 'T', 'S', 'T', '1'};

struct Optimizer {
    OptConfig cfg;
    size_t n;
    long steps;
    float *m; /* (n) momentum buffer (sgd with momentum) or AdamW's exp_avg; NULL for plain sgd */
    float *v; /* (n) AdamW's exp_avg_sq; NULL otherwise */
};

/* ---- configuration ---- */

void opt_config_default(OptKind kind, OptConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    if (kind == OPT_SGD) {
        cfg->lr = 1e-1;
    } else {
        cfg->lr = 1e-6;
        cfg->weight_decay = 0.01;
    }
}

int opt_kind_parse(const char *name, OptKind *out)
{
    if (name && strcmp(name, "sgd") == 0) {
        *out = OPT_SGD;
        return 0;
    }
    if (name && strcmp(name, "adamw") == 0) {
        *out = OPT_ADAMW;
        return 0;
    }
    return -1;
}

const char *opt_kind_name(OptKind kind)
{
    return kind == OPT_SGD ? "sgd" : kind == OPT_ADAMW ? "adamw" : "unknown";
}

double opt_lr_at(const OptConfig *cfg, long step)
{
    if (cfg->warmup_steps > 0 && step + 1 < cfg->warmup_steps)
        return cfg->lr * ((double)(step + 1) / (double)cfg->warmup_steps);
    return cfg->lr;
}

/* ---- lifetime ---- */

int opt_create(const OptConfig *cfg, size_t n, Optimizer **out, SsError *err)
{
    *out = NULL;
    if (cfg->kind != OPT_SGD && cfg->kind != OPT_ADAMW)
        return ss_err(err, SS_EUSAGE, "optimizer: unknown kind %d", (int)cfg->kind);
    if (!(cfg->lr >= 0.0) || !isfinite(cfg->lr))
        return ss_err(err, SS_EUSAGE, "optimizer: learning rate %g is not finite and >= 0", cfg->lr);
    if (!(cfg->weight_decay >= 0.0) || !isfinite(cfg->weight_decay))
        return ss_err(err, SS_EUSAGE, "optimizer: weight decay %g is not finite and >= 0",
                      cfg->weight_decay);
    if (!(cfg->max_grad_norm >= 0.0))
        return ss_err(err, SS_EUSAGE, "optimizer: max grad norm %g is not >= 0",
                      cfg->max_grad_norm);
    if (cfg->warmup_steps < 0)
        return ss_err(err, SS_EUSAGE, "optimizer: warm-up steps %ld < 0", cfg->warmup_steps);
    if (cfg->kind == OPT_SGD && !(cfg->momentum >= 0.0 && cfg->momentum < 1.0))
        return ss_err(err, SS_EUSAGE, "optimizer: momentum %g is not in [0, 1)", cfg->momentum);
    if (cfg->kind == OPT_ADAMW) {
        if (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0) || !(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0))
            return ss_err(err, SS_EUSAGE, "optimizer: betas (%g, %g) are not in [0, 1)",
                          cfg->beta1, cfg->beta2);
        if (!(cfg->eps > 0.0))
            return ss_err(err, SS_EUSAGE, "optimizer: eps %g is not > 0", cfg->eps);
    }
    Optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return ss_err(err, SS_EOUTPUT, "optimizer: out of memory");
    o->cfg = *cfg;
    o->n = n;
    size_t nbuf = cfg->kind == OPT_ADAMW ? 2 : (cfg->momentum != 0.0 ? 1 : 0);
    if (nbuf > 0 && n > SIZE_MAX / sizeof(float) / 2) {
        free(o);
        return ss_err(err, SS_EOUTPUT, "optimizer: %zu parameters: state size overflows", n);
    }
    if (nbuf >= 1 && !(o->m = calloc(n ? n : 1, sizeof(float))))
        goto oom;
    if (nbuf >= 2 && !(o->v = calloc(n ? n : 1, sizeof(float))))
        goto oom;
    *out = o;
    return 0;
oom:
    opt_free(o);
    return ss_err(err, SS_EOUTPUT, "optimizer: out of memory for %zu parameters' state", n);
}

void opt_free(Optimizer *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

size_t opt_state_bytes(const Optimizer *o)
{
    return ((o->m ? o->n : 0) + (o->v ? o->n : 0)) * sizeof(float);
}

long opt_steps(const Optimizer *o)
{
    return o->steps;
}

/* ---- gradient norm ---- */

/* Sum of squares in double, block by block in index order (the same bits at any thread count or
 * vector width: the additions are never reordered). mask may be NULL. */
static double sumsq(const float *g, const uint8_t *mask, size_t n)
{
    double total = 0.0;
    for (size_t b0 = 0; b0 < n; b0 += OPT_NORM_BLOCK) {
        size_t b1 = n - b0 < OPT_NORM_BLOCK ? n : b0 + OPT_NORM_BLOCK;
        double s = 0.0;
        if (mask) {
            for (size_t i = b0; i < b1; i++)
                if (mask[i])
                    s += (double)g[i] * (double)g[i];
        } else {
            for (size_t i = b0; i < b1; i++)
                s += (double)g[i] * (double)g[i];
        }
        total += s;
    }
    return total;
}

double opt_grad_norm(const float *g, size_t n)
{
    return sqrt(sumsq(g, NULL, n));
}

/* clip_grad_norm_'s coefficient, in float32 as torch 1.13 computes it from a float32 total norm:
 * clip_coef = max_norm / (total_norm + 1e-6), evaluated as Tensor.__rtruediv__ does,
 * reciprocal(total_norm + 1e-6f) * (float)max_norm. Returns 1 when no clipping applies
 * (torch multiplies by clamp(clip_coef, max=1), and x * 1.0f == x). */
static float clip_coef(double norm, double max_norm)
{
    if (max_norm <= 0.0)
        return 1.0f;
    float tn = (float)norm;
    float c;
    if (isinf(tn)) /* a finite norm beyond float's range: torch would give 0 and zero the grads */
        c = (float)(max_norm / (norm + 1e-6));
    else
        c = (1.0f / (tn + (float)1e-6)) * (float)max_norm;
    return c < 1.0f ? c : 1.0f;
}

OPT_CLONES
static void scale_grads(float *g, const uint8_t *mask, size_t n, float c)
{
    if (mask) {
        for (size_t i = 0; i < n; i++)
            g[i] = mask[i] ? g[i] * c : g[i];
    } else {
        for (size_t i = 0; i < n; i++)
            g[i] *= c;
    }
}

/* ---- the updates (one per kind; a masked twin keeps others' bits and state) ---- */

/* torch: d_p = grad.add(param, alpha=wd) when wd != 0; param.add_(d_p, alpha=-lr). */
OPT_CLONES
static void sgd_plain(float *p, const float *g, const uint8_t *mask, size_t n, float neg_lr,
                      float wd)
{
    for (size_t i = 0; i < n; i++) {
        float d = wd != 0.0f ? fmaf(p[i], wd, g[i]) : g[i];
        float np = fmaf(d, neg_lr, p[i]);
        p[i] = (!mask || mask[i]) ? np : p[i];
    }
}

/* torch: buf = clone(d_p) on the first step, else buf.mul_(momentum).add_(d_p) (alpha 1: an exact
 * product, so the fused add is a plain add); param.add_(buf, alpha=-lr). */
OPT_CLONES
static void sgd_momentum(float *p, const float *g, float *buf, const uint8_t *mask, size_t n,
                         float neg_lr, float wd, float mom, int first)
{
    for (size_t i = 0; i < n; i++) {
        float d = wd != 0.0f ? fmaf(p[i], wd, g[i]) : g[i];
        float b = first ? d : buf[i] * mom + d;
        float np = fmaf(b, neg_lr, p[i]);
        int on = !mask || mask[i];
        buf[i] = on ? b : buf[i];
        p[i] = on ? np : p[i];
    }
}

/* torch 1.13 _single_tensor_adamw, with the python scalars rounded to float by the caller:
 *   param.mul_(decay)                               decay = (float)(1 - lr * wd)
 *   exp_avg.mul_(b1).add_(grad, alpha=1 - b1)       m = fmaf(g, c1, m * b1)
 *   exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1-b2)  v = fmaf(c2 * g, g, v * b2)
 *   denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
 *   param.addcdiv_(exp_avg, denom, value=-step_size) p = p + (neg_step * m) / denom */
OPT_CLONES
static void adamw_update(float *p, const float *g, float *m, float *v, const uint8_t *mask,
                         size_t n, float decay, float b1, float c1, float b2, float c2,
                         float bc2_sqrt, float eps, float neg_step)
{
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * decay;
        float mi = fmaf(g[i], c1, m[i] * b1);
        float vi = fmaf(c2 * g[i], g[i], v[i] * b2);
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        float np = pi + (neg_step * mi) / denom;
        int on = !mask || mask[i];
        m[i] = on ? mi : m[i];
        v[i] = on ? vi : v[i];
        p[i] = on ? np : p[i];
    }
}

int opt_step(Optimizer *o, float *params, float *grads, const uint8_t *mask, double *grad_norm,
             double *lr_used)
{
    const OptConfig *c = &o->cfg;
    const size_t n = o->n;
    double norm = sqrt(sumsq(grads, mask, n));
    if (grad_norm)
        *grad_norm = norm;
    if (!isfinite(norm))
        return 1;
    float coef = clip_coef(norm, c->max_grad_norm);
    if (coef < 1.0f)
        scale_grads(grads, mask, n, coef);

    const double lr = opt_lr_at(c, o->steps);
    if (lr_used)
        *lr_used = lr;
    if (c->kind == OPT_SGD) {
        const float neg_lr = (float)-lr, wd = (float)c->weight_decay;
        if (o->m)
            sgd_momentum(params, grads, o->m, mask, n, neg_lr, wd, (float)c->momentum,
                         o->steps == 0);
        else
            sgd_plain(params, grads, mask, n, neg_lr, wd);
    } else {
        /* The scalars as torch's python computes them, in double. */
        const double step = (double)(o->steps + 1);
        const double bc1 = 1.0 - pow(c->beta1, step);
        const double bc2 = 1.0 - pow(c->beta2, step);
        const double step_size = lr / bc1;
        const double bc2_sqrt = sqrt(bc2);
        adamw_update(params, grads, o->m, o->v, mask, n, (float)(1.0 - lr * c->weight_decay),
                     (float)c->beta1, (float)(1.0 - c->beta1), (float)c->beta2,
                     (float)(1.0 - c->beta2), (float)bc2_sqrt, (float)c->eps, (float)-step_size);
    }
    o->steps++;
    return 0;
}

/* ---- state io ----
 * Layout (host byte order, little-endian on every supported machine):
 *   8 bytes  magic "SSOPTST1"
 *   u32      kind (OptKind)      u32  number of state arrays (0, 1 or 2)
 *   u64      n                   i64  steps
 *   then each state array: n float32 (momentum buffer or exp_avg, then exp_avg_sq). */

typedef struct OptStateHeader {
    char magic[8];
    uint32_t kind, narrays;
    uint64_t n;
    int64_t steps;
} OptStateHeader;

int opt_state_write(const Optimizer *o, FILE *f, SsError *err)
{
    OptStateHeader h;
    memcpy(h.magic, OPT_MAGIC, 8);
    h.kind = (uint32_t)o->cfg.kind;
    h.narrays = (uint32_t)((o->m != NULL) + (o->v != NULL));
    h.n = (uint64_t)o->n;
    h.steps = (int64_t)o->steps;
    if (fwrite(&h, sizeof h, 1, f) != 1)
        return ss_err(err, SS_EOUTPUT, "optimizer state: write failed");
    const float *arr[2] = {o->m, o->v};
    for (int k = 0; k < 2; k++)
        if (arr[k] && o->n > 0 && fwrite(arr[k], sizeof(float), o->n, f) != o->n)
            return ss_err(err, SS_EOUTPUT, "optimizer state: write failed");
    return 0;
}

int opt_state_read(Optimizer *o, FILE *f, SsError *err)
{
    OptStateHeader h;
    if (fread(&h, sizeof h, 1, f) != 1)
        return ss_err(err, SS_EINPUT, "optimizer state: truncated header");
    if (memcmp(h.magic, OPT_MAGIC, 8) != 0)
        return ss_err(err, SS_EINPUT, "optimizer state: bad magic");
    uint32_t narrays = (uint32_t)((o->m != NULL) + (o->v != NULL));
    if (h.kind != (uint32_t)o->cfg.kind || h.narrays != narrays)
        return ss_err(err, SS_EINCOMPAT,
                      "optimizer state: saved by %s with %u state arrays, restoring into %s with %u",
                      opt_kind_name((OptKind)h.kind), h.narrays, opt_kind_name(o->cfg.kind),
                      narrays);
    if (h.n != (uint64_t)o->n)
        return ss_err(err, SS_EINCOMPAT,
                      "optimizer state: saved for %llu parameters, restoring into %zu",
                      (unsigned long long)h.n, o->n);
    if (h.steps < 0)
        return ss_err(err, SS_EINPUT, "optimizer state: negative step count");
    float *arr[2] = {o->m, o->v};
    for (int k = 0; k < 2; k++)
        if (arr[k] && o->n > 0 && fread(arr[k], sizeof(float), o->n, f) != o->n)
            return ss_err(err, SS_EINPUT, "optimizer state: truncated state array");
    o->steps = (long)h.steps;
    return 0;
}
