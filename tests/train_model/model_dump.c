/* model_dump: the C side of the PyTorch oracle test (test_model_torch.py).
 *   model_dump grads CONFIG WEIGHTS INPUTS OUT
 *       INPUTS holds tokens and targets (I32, (B, T)) and optionally dlogp (F32, (B, T)); without
 *       it dlogp is -1/count at the scored positions (loss = -mean logp). Writes OUT with logits
 *       (B, T, V), logp, entropy (B, T) and grad.<tensor name> for every parameter tensor.
 *   model_dump convert CONFIG IN OUT DTYPE
 *       model_load_params IN, model_save_params OUT in DTYPE (F32, BF16 or F16).
 *   model_dump init CONFIG SEED OUT
 *       model_init_params(SEED), saved as F32.
 * Exit status: 0, or the SS_E* exit status with the message on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/model.h"

static int fail(const SsError *err)
{
    fprintf(stderr, "model_dump: %s\n", err->msg);
    return ss_exit_status(err->code);
}

static const StTensor *input(const StCheckpoint *ck, const char *name, DType dt, SsError *err)
{
    const StTensor *t = st_find(ck, name);
    if (!t || t->dtype != dt || t->ndim != 2) {
        ss_err(err, SS_EINPUT, "%s: tensor '%s': missing, or not a %s matrix", ck->path, name,
               dtype_name(dt));
        return NULL;
    }
    return t;
}

static int grads(Model *m, const char *weights, const char *inputs, const char *out)
{
    SsError err = {0};
    float *p = malloc(m->nparams * sizeof *p), *g = calloc(m->nparams, sizeof *g);
    if (!p || !g || model_load_params(m, weights, p, &err))
        return p && g ? fail(&err) : 4;
    StCheckpoint *ck;
    if (st_open(inputs, &ck, &err))
        return fail(&err);
    const StTensor *tt = input(ck, "tokens", DT_I32, &err);
    const StTensor *tg = tt ? input(ck, "targets", DT_I32, &err) : NULL;
    if (!tg)
        return fail(&err);
    int B = (int)tt->shape[0], T = (int)tt->shape[1];
    size_t N = (size_t)B * (size_t)T, V = (size_t)m->cfg.vocab_size;
    if (tg->shape[0] != tt->shape[0] || tg->shape[1] != tt->shape[1]) {
        ss_err(&err, SS_EINPUT, "%s: tokens and targets differ in shape", inputs);
        return fail(&err);
    }
    const int32_t *tokens = tt->data, *targets = tg->data;
    float *logp = malloc(N * 4), *ent = malloc(N * 4), *dl = malloc(N * 4);
    const StTensor *td = st_find(ck, "dlogp");
    size_t scored = 0;
    for (size_t i = 0; i < N; i++)
        scored += targets[i] >= 0;
    for (size_t i = 0; i < N; i++)
        dl[i] = td ? ((const float *)td->data)[i]
                   : targets[i] >= 0 ? -1.0f / (float)scored : 0.0f;
    ModelActs *a;
    if (model_acts_create(m, B, T, &a, &err))
        return fail(&err);
    /* the logits of every position: model_forward computes each sequence's positions up to its
     * last target only, so a first forward with a target everywhere */
    int32_t *all = malloc(N * sizeof *all);
    float *logits = malloc(N * V * sizeof *logits);
    if (!all || !logits) {
        fprintf(stderr, "model_dump: out of memory\n");
        return 4;
    }
    for (size_t i = 0; i < N; i++)
        all[i] = 0;
    model_forward(m, p, tokens, all, B, T, a, logp, ent);
    free(all);
    const float *z = model_acts_logits(a);
    if (!z) {
        fprintf(stderr, "model_dump: out of memory\n");
        return 4;
    }
    memcpy(logits, z, N * V * sizeof *logits);
    model_forward(m, p, tokens, targets, B, T, a, logp, ent);
    model_backward(m, p, a, dl, g);
    size_t nout = 3 + m->ntensors;
    StTensorSpec *specs = calloc(nout, sizeof *specs);
    const void **datas = calloc(nout, sizeof *datas);
    char (*names)[128] = calloc(m->ntensors, sizeof *names);
    uint64_t s3[3] = {(uint64_t)B, (uint64_t)T, V}, s2[2] = {(uint64_t)B, (uint64_t)T};
    specs[0] = (StTensorSpec){"logits", DT_F32, 3, s3};
    datas[0] = logits;
    specs[1] = (StTensorSpec){"logp", DT_F32, 2, s2};
    datas[1] = logp;
    specs[2] = (StTensorSpec){"entropy", DT_F32, 2, s2};
    datas[2] = ent;
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *t = &m->tensors[i];
        snprintf(names[i], sizeof names[i], "grad.%s", t->name);
        specs[3 + i] = (StTensorSpec){names[i], DT_F32, t->ndim, t->shape};
        datas[3 + i] = g + t->offset;
    }
    int rc = st_write(out, specs, datas, nout, NULL, 0, &err);
    model_acts_free(a);
    st_close(ck);
    free(specs); free(datas); free(names);
    free(p); free(g); free(logp); free(ent); free(dl); free(logits);
    return rc ? fail(&err) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: model_dump grads CONFIG WEIGHTS INPUTS OUT | "
                        "convert CONFIG IN OUT DTYPE | init CONFIG SEED OUT\n");
        return 1;
    }
    SsError err = {0};
    ModelConfig cfg;
    Model *m;
    if (model_config_read(argv[2], &cfg, &err) || model_create(&cfg, &m, &err))
        return fail(&err);
    int rc = 1;
    if (strcmp(argv[1], "grads") == 0 && argc == 6) {
        rc = grads(m, argv[3], argv[4], argv[5]);
    } else if (strcmp(argv[1], "convert") == 0 && argc == 6) {
        DType dt;
        float *p = malloc(m->nparams * sizeof *p);
        if (dtype_from_name(argv[5], &dt) != 0)
            rc = fail(&(SsError){SS_EUSAGE, "unknown dtype"});
        else if (model_load_params(m, argv[3], p, &err) ||
                 model_save_params(m, p, dt, argv[4], NULL, 0, &err))
            rc = fail(&err);
        else
            rc = 0;
        free(p);
    } else if (strcmp(argv[1], "init") == 0 && argc == 5) {
        float *p = malloc(m->nparams * sizeof *p);
        model_init_params(m, p, strtoull(argv[3], NULL, 10));
        rc = model_save_params(m, p, DT_F32, argv[4], NULL, 0, &err) ? fail(&err) : 0;
        free(p);
    } else {
        fprintf(stderr, "model_dump: bad arguments\n");
    }
    model_free(m);
    return rc;
}
