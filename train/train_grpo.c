/* grpo-train grpo: the GRPO loop. Per step: P training prompts, G sampled responses each (KV-cache
 * sampling at --temperature, --max-new cap), rewards from the task's verifier, group-normalized
 * advantages, the reference policy's log-probabilities (when the KL coefficient is not 0), then
 * --epochs passes of --mini-batches updates on the clipped surrogate plus k3 KL. Snapshots, the
 * --resume state, evaluations and one metrics line per step go to the run folder (trainer.h).
 * With --lora-rank the optimizer runs over the LoRA factors only (train/lora.h): each update
 * takes dL/dW of the merged weights from model_backward, turns it into the factors' gradients,
 * steps the factors and merges again (W = W0 + s B A into params, which sampling and the next
 * forward use). With --mask the optimizer's per-element mask keeps every other element's bits.
 * The reference, old-policy and policy-gradient forwards and the backward run on --device
 * (train/train_device.h); sampling, LoRA's merging and the optimizer on the CPU with the host
 * weights, which are loaded into the pass again after every update. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/sdelta/run.h"
#include "train/train_device.h"
#include "train/train_internal.h"

#define EVAL_BATCH 64

typedef struct GrpoState {
    const TrainOptions *o;
    Model *m;
    TrainTok tok;              /* the tasks' tokenizer, or --init's BPE tokenizer */
    int n;                     /* sequences per step, P * G */
    int cap_T, max_new, pcap;
    float *params, *ref, *grads;
    float *logp, *logp_old, *logp_ref, *entropy, *dlogp; /* (n, cap_T) */
    float *rewards, *adv;      /* (n) */
    TaskProblem *probs;        /* (P) */
    int32_t *pbuf;             /* (P, pcap) prompt ids */
    const int32_t **prompts;   /* (n) */
    int *plen;                 /* (n) */
    uint64_t *streams;         /* (n) */
    int32_t *out;              /* (n, max_new) */
    int *olen;                 /* (n) */
    Optimizer *opt;            /* over params, or over factors with LoRA */
    Lora *lora;                /* NULL without --lora-rank */
    float *factors, *dfactors; /* (lora->nfactors) the LoRA factors and their gradients */
    uint8_t *mask;             /* (nparams) with --mask: 1 where an element may change */
    size_t trainable;          /* parameters the optimizer may change */
    TrainPass *pass;           /* the training forward and backward, on --device */
    ModelSampler *sampler, *eval_sampler;
    TrainBatch batch;
    FILE *log;
    char *log_path;
} GrpoState;

static void grpo_free(GrpoState *s)
{
    if (s->log)
        fclose(s->log);
    free(s->log_path);
    train_batch_free(&s->batch);
    model_sampler_free(s->sampler);
    model_sampler_free(s->eval_sampler);
    train_pass_free(s->pass);
    opt_free(s->opt);
    lora_free(s->lora);
    free(s->mask);
    float *bufs[] = {s->params, s->ref, s->grads, s->logp, s->logp_old, s->logp_ref,
                     s->entropy, s->dlogp, s->rewards, s->adv, s->factors, s->dfactors};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(s->probs);
    free(s->pbuf);
    free(s->prompts);
    free(s->plen);
    free(s->streams);
    free(s->out);
    free(s->olen);
    model_free(s->m);
    train_tok_close(&s->tok);
}

static int grpo_alloc(GrpoState *s, SsError *err)
{
    const TrainOptions *o = s->o;
    size_t np = s->m->nparams, cells = (size_t)s->n * s->cap_T;
    s->params = malloc(np * sizeof(float));
    s->ref = malloc(np * sizeof(float));
    s->grads = calloc(np, sizeof(float));
    float **cellbufs[] = {&s->logp, &s->logp_old, &s->logp_ref, &s->entropy, &s->dlogp};
    for (size_t i = 0; i < 5; i++)
        *cellbufs[i] = calloc(cells, sizeof(float));
    s->rewards = calloc((size_t)s->n, sizeof(float));
    s->adv = calloc((size_t)s->n, sizeof(float));
    s->probs = calloc((size_t)o->prompts, sizeof *s->probs);
    s->pbuf = calloc((size_t)o->prompts * s->pcap, sizeof *s->pbuf);
    s->prompts = calloc((size_t)s->n, sizeof *s->prompts);
    s->plen = calloc((size_t)s->n, sizeof *s->plen);
    s->streams = calloc((size_t)s->n, sizeof *s->streams);
    s->out = calloc((size_t)s->n * s->max_new, sizeof *s->out);
    s->olen = calloc((size_t)s->n, sizeof *s->olen);
    if (!s->params || !s->ref || !s->grads || !s->logp || !s->logp_old || !s->logp_ref ||
        !s->entropy || !s->dlogp || !s->rewards || !s->adv || !s->probs || !s->pbuf ||
        !s->prompts || !s->plen || !s->streams || !s->out || !s->olen)
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu parameters", np);
    int rc;
    s->trainable = np;
    if (o->lora_rank > 0) {
        double alpha = o->lora_alpha > 0 ? o->lora_alpha : (double)o->lora_rank;
        if ((rc = lora_create(s->m, o->lora_rank, alpha, &s->lora, err)) != 0)
            return rc;
        s->trainable = s->lora->nfactors;
        s->factors = calloc(s->trainable, sizeof(float));
        s->dfactors = calloc(s->trainable, sizeof(float));
        if (!s->factors || !s->dfactors)
            return ss_err(err, SS_EOUTPUT, "out of memory for %zu LoRA parameters",
                          s->trainable);
    }
    if (o->mask_path) {
        if (!(s->mask = malloc(np)))
            return ss_err(err, SS_EOUTPUT, "out of memory for the mask");
        if ((rc = train_mask_load(s->m, o->mask_path, s->mask, &s->trainable, err)) != 0)
            return rc;
    }
    if ((rc = opt_create(&o->opt, s->lora ? s->lora->nfactors : np, &s->opt, err)) != 0 ||
        (rc = train_pass_create(s->m, o->device, o->gemm, s->n, s->cap_T, o->loss.beta != 0.0f,
                                &s->pass, err)) != 0 ||
        (rc = model_sampler_create(s->m, s->n, s->cap_T, &s->sampler, err)) != 0 ||
        (rc = model_sampler_create(s->m, EVAL_BATCH, s->cap_T, &s->eval_sampler, err)) != 0 ||
        (rc = train_batch_create(&s->batch, s->n, s->cap_T, err)) != 0)
        return rc;
    return 0;
}

/* Loads the base model (config.json and weights from o->init, or the run's own base on resume),
 * rounded to bf16: training starts exactly at the weights base.safetensors holds. */
static int grpo_load_model(GrpoState *s, SsError *err)
{
    const TrainOptions *o = s->o;
    char *cfg_path = train_path(o->init, "config.json");
    if (!cfg_path)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    ModelConfig cfg;
    int rc = model_config_read(cfg_path, &cfg, err);
    free(cfg_path);
    if (rc != 0)
        return rc;
    if ((rc = train_tok_open(&s->tok, o->init, err)) != 0)
        return rc;
    if (!s->tok.bpe && cfg.vocab_size != tok_vocab_size())
        return ss_err(err, SS_EINPUT, "%s: vocab_size %d is not the tasks' tokenizer's %d (and "
                      "the folder has no tokenizer.json)", o->init, cfg.vocab_size,
                      tok_vocab_size());
    if (s->tok.bpe && cfg.vocab_size < train_tok_vocab(&s->tok))
        return ss_err(err, SS_EINPUT, "%s: vocab_size %d is smaller than its tokenizer's %d",
                      o->init, cfg.vocab_size, train_tok_vocab(&s->tok));
    int pmax, amax;
    train_tok_max_lengths(&s->tok, &o->task, &pmax, &amax);
    s->max_new = o->max_new > 0 ? o->max_new : amax + 4;
    s->pcap = pmax + 1;
    s->cap_T = 1 + pmax + s->max_new;
    if (s->cap_T > cfg.max_position_embeddings)
        return ss_err(err, SS_EUSAGE, "prompts of '%s' plus --max-new %d need %d positions; %s "
                      "has max_position_embeddings %d", o->task_text, s->max_new, s->cap_T,
                      o->init, cfg.max_position_embeddings);
    if ((rc = model_create(&cfg, &s->m, err)) != 0)
        return rc;
    return 0;
}

static json_t *eval_line(long step, double acc)
{
    return json_pack("{s:I, s:f}", "step", (json_int_t)step, "eval_acc", acc);
}

/* Keeps the lines of metrics.jsonl whose "step" is at most step (after a resume). */
static int truncate_metrics(const char *path, long step, SsError *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *kept = NULL;
    size_t klen = 0;
    FILE *mem = open_memstream(&kept, &klen);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (mem && (len = getline(&line, &cap, f)) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *js = j ? json_object_get(j, "step") : NULL;
        if (json_is_integer(js) && json_integer_value(js) <= step)
            fwrite(line, 1, (size_t)len, mem);
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (!mem)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    fclose(mem);
    int rc = 0;
    f = fopen(path, "w");
    if (!f || fwrite(kept, 1, klen, f) != klen)
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot rewrite", path);
    if (f && fclose(f) != 0 && rc == 0)
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot rewrite", path);
    free(kept);
    return rc;
}

/* A fresh run: the folder must not hold a run yet. Writes base, config and run.json. */
static int grpo_start_run(GrpoState *s, long *start, SsError *err)
{
    const TrainOptions *o = s->o;
    int rc;
    if ((rc = model_load_params(s->m, o->init, s->params, err)) != 0)
        return rc;
    train_round_bf16(s->params, s->m->nparams);
    memcpy(s->ref, s->params, s->m->nparams * sizeof(float));
    if (s->lora) {
        /* B = 0: the merged weights are the base's exactly. */
        lora_init(s->lora, s->factors, o->seed);
        lora_merge(s->m, s->lora, s->ref, s->factors, s->params);
    }
    char *run_json = train_path(o->out, "run.json");
    char *cfg = train_path(o->out, "config.json");
    if (!run_json || !cfg) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    if (o->resume) {
        json_error_t jerr;
        json_t *old = json_load_file(run_json, JSON_REJECT_DUPLICATES, &jerr);
        json_t *now = train_options_json(o, "grpo");
        json_t *was = old ? json_object_get(old, "options") : NULL;
        bool same = was && json_equal(was, now);
        json_decref(now);
        json_decref(old);
        if (!same) {
            rc = ss_err(err, SS_EUSAGE, "%s: --resume needs the options the run was started "
                        "with (%s)", run_json, old ? "they differ" : jerr.text);
            goto done;
        }
        char *base = train_path(o->out, RUN_BASE_NAME);
        rc = base ? model_load_params(s->m, base, s->ref, err)
                  : ss_err(err, SS_EOUTPUT, "out of memory");
        free(base);
        if (rc != 0)
            goto done;
        if ((rc = train_state_load(s->m, s->params, s->opt, s->lora, s->factors, o->out, start,
                                   err)) != 0)
            goto done;
        if (*start == 0)
            memcpy(s->params, s->ref, s->m->nparams * sizeof(float));
        if (*start == 0 && s->lora) {
            lora_init(s->lora, s->factors, o->seed);
            lora_merge(s->m, s->lora, s->ref, s->factors, s->params);
        }
        train_remove_stale_tmp(o->out);
        rc = truncate_metrics(s->log_path, *start, err);
        goto done;
    }
    if (access(run_json, F_OK) == 0) {
        rc = ss_err(err, SS_EUSAGE, "%s: a run already exists there (use --resume to continue "
                    "it, or another folder)", o->out);
        goto done;
    }
    *start = 0;
    ModelConfig c = s->m->cfg;
    json_t *rj = json_pack("{s:s, s:s, s:o, s:I, s:I}", "program", "grpo-train", "version",
                           SS_VERSION, "options", train_options_json(o, "grpo"), "parameters",
                           (json_int_t)s->m->nparams, "trainable_parameters",
                           (json_int_t)s->trainable);
    if (s->lora)
        json_object_set_new(rj, "lora", json_pack("{s:i, s:f, s:f, s:I, s:s}", "r", s->lora->r,
                                                  "alpha", s->lora->alpha, "scale",
                                                  (double)s->lora->scale, "target_matrices",
                                                  (json_int_t)s->lora->ntargets, "adapters",
                                                  "adapters/step-NNNNNN"));
    if (o->mask_path)
        json_object_set_new(rj, "mask", json_pack("{s:s, s:I}", "file", o->mask_path,
                                                  "trainable", (json_int_t)s->trainable));
    if ((rc = train_write_run_base(s->m, s->params, o->out, o->save_master, err)) == 0 &&
        (rc = model_config_write(cfg, &c, "bfloat16", err)) == 0 &&
        (!s->tok.bpe || (rc = train_copy_tokenizer(o->init, o->out, err)) == 0))
        rc = train_write_json(run_json, rj, err);
    else
        json_decref(rj);
    if (rc == 0) {
        FILE *f = fopen(s->log_path, "w");
        if (!f)
            rc = ss_err(err, SS_EOUTPUT, "%s: cannot create", s->log_path);
        else
            fclose(f);
    }
done:
    free(run_json);
    free(cfg);
    return rc;
}

typedef struct StepStats {
    double reward_mean, reward_std, zero_spread, resp_len_mean, entropy;
    int resp_len_max;
    long tokens, resp_tokens;
    double loss, pg_loss, kl, clip_frac, grad_norm, lr;
    int updates, skipped;
    double sample_s;
} StepStats;

/* Samples the step's responses and scores them. */
static int grpo_rollout(GrpoState *s, long step, StepStats *st, SsError *err)
{
    const TrainOptions *o = s->o;
    int P = o->prompts, G = o->group;
    for (int p = 0; p < P; p++) {
        task_problem(&o->task, o->seed, TASK_TRAIN, (uint64_t)(step - 1) * P + p, &s->probs[p]);
        int len = train_encode_prompt(&s->tok, &s->probs[p], s->pbuf + (size_t)p * s->pcap,
                                      s->pcap);
        if (len < 0)
            return ss_err(err, SS_EUSAGE, "task prompt '%s' cannot be tokenized",
                          s->probs[p].prompt);
        for (int g = 0; g < G; g++) {
            int i = p * G + g;
            s->prompts[i] = s->pbuf + (size_t)p * s->pcap;
            s->plen[i] = len;
            s->streams[i] = (uint64_t)(step - 1) * s->n + i;
        }
    }
    double t0 = train_now();
    model_sample(s->m, s->params, s->sampler, s->prompts, s->plen, s->n, s->max_new,
                 o->temperature, s->tok.eos, o->seed, s->streams, s->out, s->olen);
    st->sample_s = train_now() - t0;
    double rsum = 0.0, lsum = 0.0;
    st->resp_len_max = 0;
    for (int i = 0; i < s->n; i++) {
        const int32_t *resp = s->out + (size_t)i * s->max_new;
        s->rewards[i] = (float)train_reward(&s->tok, &s->probs[i / G], resp, s->olen[i]);
        rsum += s->rewards[i];
        lsum += s->olen[i];
        if (s->olen[i] > st->resp_len_max)
            st->resp_len_max = s->olen[i];
        train_batch_set(&s->batch, i, s->prompts[i], s->plen[i], resp, s->olen[i]);
    }
    train_batch_finish(&s->batch, s->n);
    st->reward_mean = rsum / s->n;
    double var = 0.0;
    for (int i = 0; i < s->n; i++)
        var += (s->rewards[i] - st->reward_mean) * (s->rewards[i] - st->reward_mean);
    st->reward_std = sqrt(var / s->n);
    st->resp_len_mean = lsum / s->n;
    int zero = grpo_advantages(s->rewards, P, G, o->adv_mode, o->adv_eps, s->adv);
    st->zero_spread = (double)zero / P;
    return 0;
}

/* The updates of one step on the batch grpo_rollout built. */
static int grpo_update(GrpoState *s, StepStats *st, SsError *err)
{
    const TrainOptions *o = s->o;
    TrainBatch *b = &s->batch;
    int T = b->T;
    int rc;
    if (o->loss.beta != 0.0f &&
        (rc = train_pass_forward(s->pass, TRAIN_W_REF, b->tokens, b->targets, b->n, T,
                                 s->logp_ref, NULL, err)) != 0)
        return rc;
    /* The sampling policy's log-probabilities (the current weights), with the entropy. */
    if ((rc = train_pass_forward(s->pass, TRAIN_W_POLICY, b->tokens, b->targets, b->n, T,
                                 s->logp_old, s->entropy, err)) != 0)
        return rc;
    double ent = 0.0;
    st->tokens = 0;
    st->resp_tokens = 0;
    for (int i = 0; i < b->n; i++)
        st->tokens += b->seq_len[i];
    for (size_t c = 0; c < (size_t)b->n * T; c++)
        if (b->mask[c]) {
            ent += s->entropy[c];
            st->resp_tokens++;
        }
    st->entropy = st->resp_tokens ? ent / st->resp_tokens : 0.0;

    int M = o->mini_batches;
    for (int e = 0; e < o->epochs; e++) {
        for (int mb = 0; mb < M; mb++) {
            int r0 = (int)((long)b->n * mb / M), r1 = (int)((long)b->n * (mb + 1) / M);
            int rows = r1 - r0;
            size_t off = (size_t)r0 * T;
            const float *cur = s->logp_old + off;
            if (!(e == 0 && M == 1)) {
                if ((rc = train_pass_forward(s->pass, TRAIN_W_POLICY, b->tokens + off,
                                             b->targets + off, rows, T, s->logp + off, NULL,
                                             err)) != 0)
                    return rc;
                cur = s->logp + off;
            }
            GrpoLossStats ls;
            grpo_loss(&o->loss, rows, T, cur, s->logp_old + off,
                      o->loss.beta != 0.0f ? s->logp_ref + off : NULL, b->mask + off,
                      s->adv + r0, s->dlogp + off, &ls);
            if ((rc = train_pass_backward(s->pass, s->dlogp + off, s->grads, err)) != 0)
                return rc;
            double gn = 0.0, lr = 0.0;
            int skipped;
            if (s->lora) {
                lora_backward(s->m, s->lora, s->factors, s->grads, s->dfactors);
                skipped = opt_step(s->opt, s->factors, s->dfactors, NULL, &gn, &lr);
                if (!skipped)
                    lora_merge(s->m, s->lora, s->ref, s->factors, s->params);
            } else {
                skipped = opt_step(s->opt, s->params, s->grads, s->mask, &gn, &lr);
            }
            if (!skipped && (rc = train_pass_load(s->pass, TRAIN_W_POLICY, s->params, err)) != 0)
                return rc;
            st->updates++;
            st->skipped += skipped;
            st->loss += ls.loss;
            st->pg_loss += ls.pg_loss;
            st->kl += ls.kl;
            st->clip_frac += ls.clip_frac;
            st->grad_norm += gn;
            st->lr = lr;
        }
    }
    st->loss /= st->updates;
    st->pg_loss /= st->updates;
    st->kl /= st->updates;
    st->clip_frac /= st->updates;
    st->grad_norm /= st->updates;
    return 0;
}

static json_t *step_line(const GrpoState *s, long step, const StepStats *st, double dt)
{
    json_t *j = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:i, s:f, s:f, s:f, s:f}", "step",
                          (json_int_t)step, "reward_mean", st->reward_mean, "reward_std",
                          st->reward_std, "zero_spread_frac", st->zero_spread, "kl", st->kl,
                          "resp_len_mean", st->resp_len_mean, "resp_len_max", st->resp_len_max,
                          "entropy", st->entropy, "clip_frac", st->clip_frac, "loss", st->loss,
                          "pg_loss", st->pg_loss);
    json_object_set_new(j, "grad_norm", isfinite(st->grad_norm) ? json_real(st->grad_norm)
                                                                 : json_null());
    json_object_set_new(j, "lr", json_real(st->lr));
    json_object_set_new(j, "updates", json_integer(st->updates));
    json_object_set_new(j, "skipped", json_integer(st->skipped));
    json_object_set_new(j, "tokens", json_integer(st->tokens));
    json_object_set_new(j, "tokens_per_s", json_real(dt > 0 ? st->tokens / dt : 0.0));
    json_object_set_new(j, "step_time_s", json_real(dt));
    json_object_set_new(j, "sample_time_s", json_real(st->sample_s));
    json_object_set_new(j, "opt_state_bytes", json_integer((json_int_t)opt_state_bytes(s->opt)));
    json_object_set_new(j, "trainable_parameters", json_integer((json_int_t)s->trainable));
    json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)train_peak_rss_bytes()));
    return j;
}

int train_grpo(const TrainOptions *o, SsError *err)
{
    GrpoState s = {.o = o};
    int rc;
    if (!o->init)
        return ss_err(err, SS_EUSAGE, "grpo needs --init BASE (a model folder from sft)");
    if (o->lora_rank > 0 && o->mask_path)
        return ss_err(err, SS_EUSAGE, "--mask restricts full-parameter training; it cannot be "
                      "combined with --lora-rank");
    if (o->prompts < 1 || o->group < 2 || o->mini_batches < 1 || o->epochs < 1 ||
        o->mini_batches > o->prompts * o->group)
        return ss_err(err, SS_EUSAGE, "need --prompts >= 1, --group >= 2, and 1 <= "
                      "--mini-batches <= prompts * group");
    s.n = o->prompts * o->group;
    openblas_set_num_threads(o->threads);
    if ((rc = grpo_load_model(&s, err)) != 0 || (rc = grpo_alloc(&s, err)) != 0)
        goto done;
    if ((rc = train_mkdir(o->out, err)) != 0)
        goto done;
    if (!(s.log_path = train_path(o->out, "metrics.jsonl"))) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    long start = 0;
    if ((rc = grpo_start_run(&s, &start, err)) != 0 ||
        (rc = train_pass_load(s.pass, TRAIN_W_POLICY, s.params, err)) != 0 ||
        (o->loss.beta != 0.0f && (rc = train_pass_load(s.pass, TRAIN_W_REF, s.ref, err)) != 0))
        goto done;
    if (!o->quiet) {
        fprintf(stderr, "grpo: %zu trainable parameters of %zu", s.trainable, s.m->nparams);
        if (s.lora)
            fprintf(stderr, " (LoRA r=%d alpha=%g on %zu matrices; optimizer state %zu bytes)",
                    s.lora->r, s.lora->alpha, s.lora->ntargets, opt_state_bytes(s.opt));
        else if (o->mask_path)
            fprintf(stderr, " (--mask %s)", o->mask_path);
        fputc('\n', stderr);
        if (o->device != TRAIN_DEVICE_CPU)
            fprintf(stderr, "grpo: forward and backward on %s\n", train_pass_describe(s.pass));
    }
    if (!(s.log = fopen(s.log_path, "a"))) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot open for appending", s.log_path);
        goto done;
    }
    if (start == 0) {
        double acc = train_eval_accuracy(s.m, s.params, s.eval_sampler, EVAL_BATCH, &s.tok,
                                         &o->task, o->seed, o->eval_size, s.max_new);
        if ((rc = train_log_line(s.log, eval_line(0, acc), s.log_path, err)) != 0)
            goto done;
    }
    double t_start = train_now();
    for (long step = start + 1; step <= o->steps; step++) {
        double t0 = train_now();
        StepStats st = {0};
        if ((rc = grpo_rollout(&s, step, &st, err)) != 0)
            goto done;
        if ((rc = grpo_update(&s, &st, err)) != 0)
            goto done;
        double dt = train_now() - t0;
        if ((rc = train_log_line(s.log, step_line(&s, step, &st, dt), s.log_path, err)) != 0)
            goto done;
        bool last = step == o->steps;
        if ((o->snapshot_every > 0 && step % o->snapshot_every == 0) || last) {
            if ((rc = train_write_snapshot(s.m, s.params, o->out, step, o->save_master,
                                           o->threads, err)) != 0 ||
                (s.lora && (rc = train_write_adapter(s.m, s.lora, s.factors, o->out, step,
                                                     o->init, err)) != 0) ||
                (rc = train_state_save(s.m, s.params, s.opt, s.lora, s.factors, o->out, step,
                                       err)) != 0)
                goto done;
        }
        double acc = -1.0;
        if ((o->eval_every > 0 && step % o->eval_every == 0) || last) {
            acc = train_eval_accuracy(s.m, s.params, s.eval_sampler, EVAL_BATCH, &s.tok,
                                      &o->task, o->seed, o->eval_size, s.max_new);
            if ((rc = train_log_line(s.log, eval_line(step, acc), s.log_path, err)) != 0)
                goto done;
        }
        if (!o->quiet) {
            /* On a terminal one line is rewritten in place; in a log, one line per step. */
            bool tty = isatty(STDERR_FILENO);
            fprintf(stderr, "%sgrpo step %ld/%ld  reward %.3f  kl %.2e  len %.1f  gnorm %.3g  "
                    "%.2f s/step  %.0f s", tty ? "\r\033[K" : "", step, o->steps,
                    st.reward_mean, st.kl, st.resp_len_mean, st.grad_norm, dt,
                    train_now() - t_start);
            if (acc >= 0)
                fprintf(stderr, "  eval acc %.3f", acc);
            if (!tty || acc >= 0 || last)
                fputc('\n', stderr);
            if (st.skipped)
                fprintf(stderr, "grpo step %ld: %d update(s) skipped: gradient norm not "
                        "finite\n", step, st.skipped);
        }
    }
    if (!o->quiet)
        fprintf(stderr, "grpo: %ld steps -> %s\n", o->steps, o->out);
done:
    grpo_free(&s);
    return rc;
}
