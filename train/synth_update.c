/* The update model of `ckpt-synth update` and the command itself.
 *
 * What RLVR training does to stored weights: the trainer holds float32 master weights w (here the
 * base values, decoded exactly), applies N optimizer steps, and the saved child is w + delta
 * rounded to nearest even in the stored dtype. In bf16 that rounding erases every update smaller
 * than half an ULP of the weight (2^-9 |w| to 2^-8 |w|); nothing here masks elements at random.
 *
 * Per element (all draws from the counter-based stream of (seed, tensor name) at the element
 * index), with a per-step gradient g_s = a * (mu + eps_s), a drift mu ~ N(0, rho^2) and step noise
 * eps_s ~ N(0, 1):
 *
 *   SGD-like   delta = -lr * G * a * (N mu + sqrt(N) eps)          where the bracket, a sum of
 *              normals, is drawn at once as sqrt(N + N^2 rho^2) z; a = L = min(1/u, 1e5) is a
 *              heavy-tailed (Pareto, alpha = 1) per-element gradient magnitude, u ~ U(0, 1).
 *   AdamW-like delta = -lr * (N mu + sqrt(N) z) / sqrt(1 + mu^2) - lr * wd * N * w
 *              Adam divides each step by the gradient's RMS, so an element moves ~lr per step
 *              whatever its gradient magnitude: a sign-like random walk with drift.
 *
 * The N steps are summed in closed form, so the cost does not grow with --steps. --stripes picks,
 * per layer, max(1, Q/8) query heads (and their KV heads): their rows of q/k/v_proj and columns of
 * o_proj get a 10x larger gradient magnitude (SGD) or a 5x larger drift (AdamW). */
#include "train/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "formats/dtype_convert.h"

#define SYNTH_DOMAIN_UPDATE 0x55504454u  /* "UPDT" */
#define SYNTH_DOMAIN_STRIPES 0x53545250u /* "STRP" */

#define SYNTH_SGD_GRAD 9e-10    /* G: typical per-element per-step gradient (calibrated) */
#define SYNTH_TAIL_CAP 1e5      /* largest heavy-tail multiplier L */
#define SYNTH_DRIFT 0.1         /* rho: drift of the gradient relative to its noise */
#define SYNTH_STRIPE_GAIN 10.0  /* SGD: gradient magnitude factor on stripe heads */
#define SYNTH_STRIPE_DRIFT 0.5  /* AdamW: drift on stripe heads */

typedef enum StripeMode { STRIPE_NONE, STRIPE_ROWS, STRIPE_COLS } StripeMode;

typedef struct UpdTensor {
    const void *src;  /* base data */
    uint64_t key;     /* stream key */
    bool update;      /* a float dtype we update; other dtypes are copied */
    StripeMode mode;
    uint64_t cols;    /* last dimension */
    uint64_t head_dim;
    uint8_t *hot;     /* per head: 1 for a stripe head (owned) */
} UpdTensor;

typedef struct UpdCtx {
    const SynthTensor *tensors;
    UpdTensor *u;
    SynthOptimizer opt;
    double lr;
    double steps;
    double sgd_scale;  /* lr * G * sqrt(N + N^2 rho^2) */
    double sqrt_steps;
    double decay;      /* lr * wd * N */
} UpdCtx;

/* ---- the per-element model ---- */

#define SYNTH_BLOCK 512 /* elements whose deltas are computed before they are applied */

typedef struct RunParams {
    double gain;  /* SGD: gradient magnitude factor */
    double drift; /* AdamW: rho */
} RunParams;

/* SGD-like deltas of elements [i0, i0 + n): -scale * L * z. */
SYNTH_CLONES
static void sgd_block(double scale, uint64_t key, uint64_t i0, size_t n, double *out)
{
    for (size_t j = 0; j < n; j++) {
        uint64_t i = i0 + j;
        double L = 1.0 / synth_uniform(synth_draw(key, 2 * i + 1));
        L = L < SYNTH_TAIL_CAP ? L : SYNTH_TAIL_CAP;
        out[j] = -scale * L * synth_normal(synth_draw(key, 2 * i));
    }
}

/* AdamW-like deltas without the decay term: -lr (N mu + sqrt(N) z) / sqrt(1 + mu^2). */
SYNTH_CLONES
static void adamw_block(const UpdCtx *c, double drift, uint64_t key, uint64_t i0, size_t n,
                        double *out)
{
    double lr = c->lr, N = c->steps, sN = c->sqrt_steps;
    for (size_t j = 0; j < n; j++) {
        uint64_t i = i0 + j;
        double mu = drift * synth_normal(synth_draw(key, 2 * i));
        double z = synth_normal(synth_draw(key, 2 * i + 1));
        out[j] = -lr * (N * mu + sN * z) / sqrt(1.0 + mu * mu);
    }
}

/* How far from element i the stripe parameters stay constant, and what they are. */
static uint64_t run_params(const UpdTensor *u, uint64_t i, uint64_t end, RunParams *rp)
{
    rp->gain = 1.0;
    rp->drift = SYNTH_DRIFT;
    uint64_t stop = end, head;
    if (u->mode == STRIPE_ROWS) {
        uint64_t row = i / u->cols;
        head = row / u->head_dim;
        if ((row + 1) * u->cols < stop)
            stop = (row + 1) * u->cols;
    } else if (u->mode == STRIPE_COLS) {
        uint64_t col = i % u->cols;
        head = col / u->head_dim;
        uint64_t left = u->head_dim - col % u->head_dim;
        if (i + left < stop)
            stop = i + left;
    } else {
        return stop;
    }
    if (u->hot[head]) {
        rp->gain = SYNTH_STRIPE_GAIN;
        rp->drift = SYNTH_STRIPE_DRIFT;
    }
    return stop;
}

/* Stores w + delta (float32 master weight arithmetic, then the dtype's rounding) for n elements;
 * non-finite weights stay as they are. AdamW's decoupled decay -lr*wd*N*w is added here. */
SYNTH_CLONES
static void apply_block(DType dt, double decay, const uint8_t *src, uint8_t *dst, size_t n,
                        const double *delta)
{
    switch (dt) {
    case DT_BF16:
        for (size_t j = 0; j < n; j++) {
            uint16_t h;
            memcpy(&h, src + 2 * j, 2);
            float w = synth_bits_f32((uint32_t)h << 16);
            float d = (float)(delta[j] - decay * (double)w);
            uint16_t o = synth_f32_to_bf16(w + d);
            h = isfinite(w) ? o : h;
            memcpy(dst + 2 * j, &h, 2);
        }
        break;
    case DT_F16:
        for (size_t j = 0; j < n; j++) {
            uint16_t h;
            memcpy(&h, src + 2 * j, 2);
            float w = (float)ss_f16_to_double(h);
            if (isfinite(w))
                h = synth_f32_to_f16(w + (float)(delta[j] - decay * (double)w));
            memcpy(dst + 2 * j, &h, 2);
        }
        break;
    case DT_F32:
        for (size_t j = 0; j < n; j++) {
            float w;
            memcpy(&w, src + 4 * j, 4);
            if (isfinite(w))
                w = w + (float)(delta[j] - decay * (double)w);
            memcpy(dst + 4 * j, &w, 4);
        }
        break;
    default: /* DT_F64 */
        for (size_t j = 0; j < n; j++) {
            double w;
            memcpy(&w, src + 8 * j, 8);
            if (isfinite(w))
                w = w + (delta[j] - decay * w);
            memcpy(dst + 8 * j, &w, 8);
        }
        break;
    }
}

static void update_fill(void *vctx, size_t ti, uint64_t first, uint64_t count, void *dst)
{
    const UpdCtx *c = vctx;
    const SynthTensor *t = &c->tensors[ti];
    const UpdTensor *u = &c->u[ti];
    size_t es = dtype_size(t->dtype);
    const uint8_t *src = (const uint8_t *)u->src + first * es;
    if (!u->update) {
        memcpy(dst, src, (size_t)count * es);
        return;
    }
    double delta[SYNTH_BLOCK];
    double decay = c->opt == SYNTH_ADAMW ? c->decay : 0.0;
    uint64_t i = first, end = first + count;
    while (i < end) {
        RunParams rp;
        uint64_t stop = run_params(u, i, end, &rp);
        while (i < stop) {
            size_t n = stop - i < SYNTH_BLOCK ? (size_t)(stop - i) : SYNTH_BLOCK;
            if (c->opt == SYNTH_SGD)
                sgd_block(c->sgd_scale * rp.gain, u->key, i, n, delta);
            else
                adamw_block(c, rp.drift, u->key, i, n, delta);
            size_t k = (size_t)(i - first);
            apply_block(t->dtype, decay, src + k * es, (uint8_t *)dst + k * es, n, delta);
            i += n;
        }
    }
}

/* ---- stripes ---- */

/* Looks up layer l's head geometry in the base: head_dim from q_norm, Q and K from q/k_proj. */
static bool layer_heads(const StCheckpoint *ck, int l, uint64_t *D, uint64_t *Q, uint64_t *K)
{
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", l);
    const StTensor *qn = st_find(ck, name);
    snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.weight", l);
    const StTensor *q = st_find(ck, name);
    snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.weight", l);
    const StTensor *k = st_find(ck, name);
    if (!qn || !q || !k || qn->ndim != 1 || q->ndim != 2 || k->ndim != 2 || qn->shape[0] == 0)
        return false;
    *D = qn->shape[0];
    if (q->shape[0] % *D || k->shape[0] % *D)
        return false;
    *Q = q->shape[0] / *D;
    *K = k->shape[0] / *D;
    return *K > 0 && *Q >= *K && *Q % *K == 0 && *Q <= 65536;
}

static int stripes_prepare(const StCheckpoint *ck, const SynthTensor *t, uint64_t seed,
                           UpdTensor *u, SsError *err)
{
    if (t->ndim != 2 || t->layer < 0 ||
        (t->kind != SYNTH_Q && t->kind != SYNTH_K && t->kind != SYNTH_V && t->kind != SYNTH_O))
        return SS_OK;
    uint64_t D, Q, K;
    if (!layer_heads(ck, t->layer, &D, &Q, &K))
        return SS_OK;
    uint64_t heads = (t->kind == SYNTH_K || t->kind == SYNTH_V) ? K : Q;
    uint64_t along = t->kind == SYNTH_O ? t->shape[1] : t->shape[0];
    if (along != heads * D || t->shape[1] == 0)
        return SS_OK;
    uint8_t *qhot = calloc(Q, 1);
    u->hot = calloc(heads, 1);
    uint32_t *perm = calloc(Q, sizeof *perm);
    if (!qhot || !u->hot || !perm) {
        free(qhot);
        free(perm);
        return ss_err(err, SS_EOUTPUT, "out of memory");
    }
    /* The same heads for every tensor of the layer: a partial Fisher-Yates keyed by the layer. */
    char lname[32];
    snprintf(lname, sizeof lname, "layer %d", t->layer);
    uint64_t key = synth_key(seed, SYNTH_DOMAIN_STRIPES, lname);
    for (uint64_t h = 0; h < Q; h++)
        perm[h] = (uint32_t)h;
    uint64_t nhot = Q / 8 ? Q / 8 : 1;
    for (uint64_t h = 0; h < nhot; h++) {
        uint64_t j = h + synth_draw(key, h) % (Q - h);
        uint32_t tmp = perm[h];
        perm[h] = perm[j];
        perm[j] = tmp;
        qhot[perm[h]] = 1;
    }
    for (uint64_t h = 0; h < Q; h++)
        if (qhot[h])
            u->hot[heads == Q ? h : h / (Q / K)] = 1;
    free(qhot);
    free(perm);
    u->mode = t->kind == SYNTH_O ? STRIPE_COLS : STRIPE_ROWS;
    u->cols = t->shape[1];
    u->head_dim = D;
    return SS_OK;
}

/* ---- the command ---- */

/* The base's tensors in storage order (file by file, by offset), as SynthTensors. */
static int tensors_from_base(const StCheckpoint *ck, SynthTensor **out, const void ***data,
                             SsError *err)
{
    SynthTensor *t = calloc(ck->ntensors ? ck->ntensors : 1, sizeof *t);
    const void **d = calloc(ck->ntensors ? ck->ntensors : 1, sizeof *d);
    if (!t || !d) {
        free(t);
        free(d);
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensors", ck->ntensors);
    }
    size_t n = 0;
    for (size_t f = 0; f < ck->nfiles; f++)
        for (size_t i = 0; i < ck->files[f]->ntensors && n < ck->ntensors; i++) {
            const StTensor *s = &ck->files[f]->tensors[i];
            if (s->ndim > SYNTH_MAX_NDIM) {
                free(t);
                free(d);
                return ss_err(err, SS_EINPUT, "%s: tensor '%s': %d dimensions (at most %d)",
                              s->file, s->name, s->ndim, SYNTH_MAX_NDIM);
            }
            SynthTensor *x = &t[n];
            x->name = s->name;
            x->dtype = s->dtype;
            x->ndim = s->ndim;
            for (int k = 0; k < s->ndim; k++)
                x->shape[k] = s->shape[k];
            x->numel = s->numel;
            x->nbytes = s->nbytes;
            x->kind = synth_kind_of(s->name, &x->layer);
            d[n++] = s->data;
        }
    if (n != ck->ntensors) {
        free(t);
        free(d);
        return ss_err(err, SS_EINPUT, "%s: files hold %zu tensors, the checkpoint lists %zu",
                      ck->path, n, ck->ntensors);
    }
    *out = t;
    *data = d;
    return SS_OK;
}

/* Copies BASE/config.json when BASE is a folder that has one; otherwise infers it. */
static int config_for_child(const StCheckpoint *ck, const char *base, const char *outdir,
                            SsError *err)
{
    struct stat st;
    char path[4096];
    if (stat(base, &st) == 0 && S_ISDIR(st.st_mode) &&
        (size_t)snprintf(path, sizeof path, "%s/config.json", base) < sizeof path) {
        FILE *f = fopen(path, "rb");
        if (f) {
            char *buf = NULL;
            size_t len = 0;
            if (fseek(f, 0, SEEK_END) == 0) {
                long sz = ftell(f);
                if (sz >= 0 && sz < (1L << 24) && fseek(f, 0, SEEK_SET) == 0 &&
                    (buf = malloc((size_t)sz + 1)) != NULL)
                    len = fread(buf, 1, (size_t)sz, f);
                if (buf && len != (size_t)sz) {
                    free(buf);
                    buf = NULL;
                }
            }
            fclose(f);
            if (!buf)
                return ss_err(err, SS_EINPUT, "%s: cannot read", path);
            char dst[4096];
            int rc = (size_t)snprintf(dst, sizeof dst, "%s/config.json", outdir) < sizeof dst
                         ? synth_file_write_atomic(dst, buf, len, err)
                         : ss_err(err, SS_EOUTPUT, "%s: path too long", outdir);
            free(buf);
            return rc;
        }
    }
    SynthShape s;
    DType dt;
    SsError ignored;
    if (synth_shape_infer(ck, &s, &dt, &ignored) != SS_OK)
        return SS_OK; /* not Qwen3-like: no config.json */
    return synth_config_write(outdir, &s, dt, err);
}

int synth_update_run(const SynthUpdateOptions *o, SsError *err)
{
    double lr = o->lr > 0 ? o->lr
                          : (o->optimizer == SYNTH_SGD ? SYNTH_SGD_DEFAULT_LR
                                                       : SYNTH_ADAMW_DEFAULT_LR);
    double N = o->steps ? (double)o->steps : (double)SYNTH_DEFAULT_STEPS;
    if (!isfinite(lr))
        return ss_err(err, SS_EUSAGE, "--lr must be a positive finite number");
    StCheckpoint *ck = NULL;
    int rc = st_open(o->base, &ck, err);
    if (rc)
        return rc == SS_EOUTPUT ? rc : SS_EINPUT;
    SynthTensor *t = NULL;
    const void **data = NULL;
    UpdTensor *u = NULL;
    rc = tensors_from_base(ck, &t, &data, err);
    if (rc)
        goto done;
    u = calloc(ck->ntensors ? ck->ntensors : 1, sizeof *u);
    if (!u) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ck->ntensors && rc == SS_OK; i++) {
        u[i].src = data[i];
        u[i].key = synth_key(o->seed, SYNTH_DOMAIN_UPDATE, t[i].name);
        u[i].update = t[i].dtype == DT_BF16 || t[i].dtype == DT_F16 || t[i].dtype == DT_F32 ||
                      t[i].dtype == DT_F64;
        if (o->stripes && u[i].update)
            rc = stripes_prepare(ck, &t[i], o->seed, &u[i], err);
    }
    if (rc)
        goto done;
    UpdCtx c = {
        .tensors = t, .u = u, .opt = o->optimizer, .lr = lr, .steps = N,
        .sgd_scale = lr * SYNTH_SGD_GRAD * sqrt(N + N * N * SYNTH_DRIFT * SYNTH_DRIFT),
        .sqrt_steps = sqrt(N),
        .decay = lr * SYNTH_ADAMW_WEIGHT_DECAY * N,
    };
    rc = synth_checkpoint_write(t, ck->ntensors, update_fill, &c, &o->write, err);
    if (rc == SS_OK && synth_out_is_folder(o->write.out))
        rc = config_for_child(ck, o->base, o->write.out, err);
done:
    if (u)
        for (size_t i = 0; i < ck->ntensors; i++)
            free(u[i].hot);
    free(u);
    free(t);
    free(data);
    st_close(ck);
    return rc;
}
