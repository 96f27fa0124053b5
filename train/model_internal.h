/* Private to train/model*.c: where each layer's tensors sit in the parameter buffer, the shared
 * compute helpers (GEMM wrappers, RMSNorm, rotary embedding, softmax rows) and the activation
 * storage the backward pass reads. */
#ifndef SS_TRAIN_MODEL_INTERNAL_H
#define SS_TRAIN_MODEL_INTERNAL_H

#include "train/model.h"

/* Offsets (in floats) of one layer's tensors. q, k and v are adjacent, as are gate and up, so
 * each pair of projections runs as one GEMM against a ((Q+2K)*D, H) or (2I, H) matrix; the q, k
 * and v biases (qwen2) are adjacent too, one vector of (Q+2K)*D. */
typedef struct ModelLayerOff {
    size_t in_norm, wqkv, bqkv, wo, q_norm, k_norm, post_norm, wgu, wd;
} ModelLayerOff;

typedef struct ModelImpl {
    size_t embed, norm, lm_head; /* lm_head == embed when tied */
    bool qk_norm, qkv_bias;      /* the variant's q_norm / k_norm and q/k/v biases */
    ModelLayerOff *layer;        /* L entries (bqkv, q_norm, k_norm unset when absent) */
} ModelImpl;

/* The layer's q/k/v bias vector, or NULL when the variant has none; the same for the q and k
 * norm weights (NULL: no per-head norm, only the rotation). */
static inline const float *model_bqkv(const ModelImpl *im, const float *p, size_t l)
{
    return im->qkv_bias ? p + im->layer[l].bqkv : NULL;
}
static inline const float *model_qnorm(const ModelImpl *im, const float *p, size_t l)
{
    return im->qk_norm ? p + im->layer[l].q_norm : NULL;
}
static inline const float *model_knorm(const ModelImpl *im, const float *p, size_t l)
{
    return im->qk_norm ? p + im->layer[l].k_norm : NULL;
}

/* Adds bias b (width w) to each of rows rows of x (stride ldx). */
void model_add_bias(float *x, size_t ldx, const float *b, size_t rows, size_t w);

static inline const ModelImpl *model_impl(const Model *m)
{
    return (const ModelImpl *)m->impl_;
}

/* Dimensions used everywhere, as size_t. */
typedef struct ModelDims {
    size_t V, H, I, L, Q, K, D, QD, KD, QKV; /* QKV = (Q + 2K) * D */
} ModelDims;

ModelDims model_dims(const ModelConfig *c);

/* Row-major C (M, N) = alpha * A (M, K) * op(B) + beta * C, with B stored (N, K) when transb. */
void model_gemm(int transa, int transb, size_t M, size_t N, size_t K, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* y = x * rstd * w per row of width H (rows of stride H); rstd (rows) is written. */
void model_rmsnorm_fwd(const float *x, const float *w, size_t rows, size_t H, double eps,
                       float *y, float *rstd);
/* y = x * rstd * w from a stored rstd (recomputing the forward output). */
void model_rmsnorm_apply(const float *x, const float *w, const float *rstd, size_t rows, size_t H,
                         float *y);
/* One row: given dy, adds dL/dx to dx (when accumulate, else writes it) and dL/dw to dw. */
void model_rmsnorm_bwd_row(const float *dy, const float *x, const float *w, float rstd, size_t H,
                           float *dx, float *dw, int accumulate);

/* cos and sin of position t times theta^(-2i/D) for t < T, i < D/2; each (T, D/2). */
void model_rope_table(int T, int D, double theta, float *cos_t, float *sin_t);

/* Rotate-half rotary embedding of one head vector of length D in place, by one table row. */
void model_rope_row(float *x, const float *cos_r, const float *sin_r, size_t D);
/* Its transpose (the backward pass), in place. */
void model_rope_row_bwd(float *dx, const float *cos_r, const float *sin_r, size_t D);

/* Per-head RMSNorm then rotary embedding, for n rows of nh heads: src rows (stride lds) hold
 * the projections, dst rows (stride ldd) get the result, rstd (rows, nh) the norm scales; row r
 * is at position pos[r] (or r % T when pos is NULL). w NULL: no norm (rstd set to 1), only the
 * rotation (qwen2, llama). */
void model_qk_norm_rope(const float *src, size_t lds, const float *w, size_t rows, size_t nh,
                        size_t D, double eps, const float *cos_t, const float *sin_t,
                        const int *pos, size_t T, float *dst, size_t ldd, float *rstd);

/* For tests: the sampler's cache of keys (v = 0) or values (v = 1) of layer l for sequence
 * slot i, (K, max_len, D). */
const float *model_sampler_cache(const ModelSampler *s, const Model *m, int l, int i, int v);

/* Activations of one layer kept for the backward pass. Rows are the packed rows of the batch
 * (ModelActs.rows): N is their number, at most B * T. */
typedef struct ModelLayerActs {
    float *x;     /* (N, H) the layer's input (the residual stream) */
    float *rstd1; /* (N) input_layernorm scales */
    float *qkv;   /* (N, QKV) projections before the head norms */
    float *qrs;   /* (N, Q) q_norm scales */
    float *krs;   /* (N, K) k_norm scales */
    float *q;     /* (N, QD) normed and rotated */
    float *k;     /* (N, KD) normed and rotated */
    float *att;   /* softmax probabilities, per group (ModelGroup.att) */
    float *ctx;   /* (N, QD) attention output before o_proj */
    float *xmid;  /* (N, H) residual after attention */
    float *rstd2; /* (N) post_attention_layernorm scales */
    float *gu;    /* (N, 2I) gate and up projections */
} ModelLayerActs;

/* Prompt (prefix) sharing. model_forward computes, in each sequence b, only positions
 * 0 .. n_b - 1, n_b = 1 + its last position with a target (the rows after it feed only logits
 * nobody reads: causal attention sends nothing back from them). Consecutive sequences whose
 * tokens start with the same P >= MODEL_SHARE_MIN ids form a group: positions 0 .. P-1 have the
 * same activations in all of them (causal attention), so they are computed once, as the group's
 * prefix rows; each member then has its own suffix rows for positions P .. n_b - 1, whose
 * queries attend to the prefix keys and values and to their own. A sequence that shares with
 * none is a group of one whose prefix is all of its rows. The packed rows are, group by group,
 * the prefix rows then each member's suffix rows. */
enum { MODEL_SHARE_MIN = 4 };

typedef struct ModelGroup {
    int b0, nb;     /* members b0 .. b0 + nb - 1 */
    int P;          /* prefix rows (positions 0 .. P-1) */
    int row0;       /* the prefix's first packed row */
    size_t att;     /* offset of the group's probabilities in a layer's att */
    size_t att_h;   /* floats per query head there: P*P, then per member S * (P + S) */
} ModelGroup;

typedef struct ModelSeq {
    int n;          /* rows computed: 1 + its last position with a target (0: none) */
    int row;        /* packed row of position P (its first suffix row) */
    int S;          /* suffix rows, max(0, n - P) */
} ModelSeq;

struct ModelActs {
    int Bmax, Tmax, B, T, V;
    ModelLayerActs *layer;
    float *xfin;   /* (N, H) the residual stream after the last layer */
    float *rstdf;  /* (N) final norm scales */
    float *hfin;   /* (N, H) final norm output */
    float *logits; /* (N, V) packed rows */
    float *lse;    /* (N) log-sum-exp of each logits row */
    float *lmax;   /* (N) max of each logits row */
    double *lsum;  /* (N) log(sum exp(z - max)) of each row */
    float *ent;    /* (N) entropy of each row */
    float *dsum;   /* (N) the backward's sum of dlogp over the positions a row serves */
    float *logits_bt; /* (Bmax, Tmax, V) model_acts_logits' unpacked copy, malloc'd on first use */
    int logits_bt_ok;
    int32_t *tokens, *targets; /* (B, T) copies */
    float *rope_cos, *rope_sin; /* (Tmax, D/2) */
    /* scratch for the backward pass */
    float *h;      /* (N, H) recomputed norm outputs */
    float *dx;     /* (N, H) gradient of the residual stream */
    float *dh;     /* (N, H) */
    float *dqkv;   /* (N, QKV) */
    float *dq, *dk; /* (N, QD), (N, KD) */
    float *dctx;   /* (N, QD) */
    float *dgu;    /* (N, 2I) */
    float *mlp;    /* (N, I) silu(gate) * up; the forward's scratch too */
    float *dmlp;   /* (N, I) */
    float *dlogits; /* (N, V) */
    float *datt;   /* (T, T) */
    /* the packing (see ModelGroup) */
    int32_t *rows;   /* (N) packed row -> b * T + t of a sequence it serves (the group's first) */
    int *pos;        /* (N) packed row -> position t */
    int32_t *rowmap; /* (B, T) b * T + t -> packed row, -1 when t >= n_b */
    size_t nrows;    /* packed rows */
    ModelGroup *groups; /* (B) */
    int ngroups;
    ModelSeq *seqs;     /* (B) */
    void *mem;
};

#endif
