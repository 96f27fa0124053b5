/* grpo-train sft: supervised warm-up of a randomly initialized model (or, with --init, of a
 * Hugging Face model with its tokenizer and the tasks' text form) on the task's reference
 * answers, so that GRPO starts from a policy whose eval accuracy is above zero and below
 * saturation. Loss: mean negative log-likelihood of the answer and EOS tokens. Writes an HF model
 * folder (bf16 weights, config.json, and --init's tokenizer files) with sft.json and
 * metrics.jsonl. The forward and backward run on --device (train/train_device.h); the optimizer
 * and the evaluation's sampling on the CPU, with the host weights. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_device.h"
#include "train/train_internal.h"

#define EVAL_BATCH 64

typedef struct SftState {
    Model *m;
    TrainTok tok;
    int32_t *pbuf, *rbuf; /* (cap_T) a prompt's and an answer's ids */
    float *params, *grads, *logp, *dlogp;
    Optimizer *opt;
    TrainPass *pass;
    ModelSampler *sampler;
    TrainBatch batch;
    FILE *log;
    char *log_path;
} SftState;

static void sft_free(SftState *s)
{
    if (s->log)
        fclose(s->log);
    free(s->log_path);
    train_batch_free(&s->batch);
    model_sampler_free(s->sampler);
    train_pass_free(s->pass);
    opt_free(s->opt);
    free(s->params);
    free(s->grads);
    free(s->logp);
    free(s->dlogp);
    free(s->pbuf);
    free(s->rbuf);
    model_free(s->m);
    train_tok_close(&s->tok);
}

/* Fills the batch with training problems (step-1)*batch .. step*batch-1: BOS prompt answer EOS,
 * scoring the answer and EOS. */
static int sft_fill(SftState *s, const TrainOptions *o, long step, SsError *err)
{
    int cap = s->batch.cap_T;
    for (int i = 0; i < o->batch; i++) {
        TaskProblem p;
        task_problem(&o->task, o->seed, TASK_TRAIN, (uint64_t)(step - 1) * o->batch + i, &p);
        int plen = train_encode_prompt(&s->tok, &p, s->pbuf, cap);
        int rlen = train_encode_answer(&s->tok, &p, s->rbuf, cap);
        if (plen < 0 || rlen < 0)
            return ss_err(err, SS_EUSAGE, "task problem '%s' -> '%s' cannot be tokenized",
                          p.prompt, p.answer);
        if (train_batch_set(&s->batch, i, s->pbuf, plen, s->rbuf, rlen) != 0)
            return ss_err(err, SS_EUSAGE, "task problem '%s' is longer than the batch allows",
                          p.prompt);
    }
    train_batch_finish(&s->batch, o->batch);
    return 0;
}

static json_t *eval_line(long step, double acc)
{
    return json_pack("{s:I, s:f}", "step", (json_int_t)step, "eval_acc", acc);
}

int train_sft(const TrainOptions *o, SsError *err)
{
    SftState s = {0};
    int rc;
    ModelConfig cfg = o->model;
    if (o->init) { /* a Hugging Face model folder: its config, weights and tokenizer */
        char *cfg_path = train_path(o->init, "config.json");
        rc = cfg_path ? model_config_read(cfg_path, &cfg, err)
                      : ss_err(err, SS_EOUTPUT, "out of memory");
        free(cfg_path);
        if (rc != 0)
            return rc;
    }
    if ((rc = train_tok_open(&s.tok, o->init, err)) != 0)
        goto done;
    int pmax, amax;
    train_tok_max_lengths(&s.tok, &o->task, &pmax, &amax);
    int max_new = o->max_new > 0 ? o->max_new : amax + 4;
    int cap_T = 1 + pmax + amax + 1;
    int eval_T = 1 + pmax + max_new;
    if ((rc = model_config_validate(&cfg, err)) != 0)
        goto done;
    if (s.tok.bpe ? cfg.vocab_size < train_tok_vocab(&s.tok)
                  : cfg.vocab_size != tok_vocab_size()) {
        rc = ss_err(err, o->init ? SS_EINPUT : SS_EUSAGE, "vocab_size %d does not fit the "
                    "tokenizer's %d", cfg.vocab_size, train_tok_vocab(&s.tok));
        goto done;
    }
    if (cap_T > cfg.max_position_embeddings || eval_T > cfg.max_position_embeddings) {
        rc = ss_err(err, SS_EUSAGE, "task '%s' needs %d positions; the model has %d",
                    o->task_text, cap_T > eval_T ? cap_T : eval_T, cfg.max_position_embeddings);
        goto done;
    }
    openblas_set_num_threads(o->threads);

    if ((rc = model_create(&cfg, &s.m, err)) != 0)
        goto done;
    size_t n = s.m->nparams;
    s.params = malloc(n * sizeof(float));
    s.grads = calloc(n, sizeof(float));
    s.logp = malloc((size_t)o->batch * cap_T * sizeof(float));
    s.dlogp = malloc((size_t)o->batch * cap_T * sizeof(float));
    s.pbuf = malloc((size_t)cap_T * sizeof *s.pbuf);
    s.rbuf = malloc((size_t)cap_T * sizeof *s.rbuf);
    if (!s.params || !s.grads || !s.logp || !s.dlogp || !s.pbuf || !s.rbuf) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory for %zu parameters", n);
        goto done;
    }
    if (!o->init)
        model_init_params(s.m, s.params, o->seed);
    else if ((rc = model_load_params(s.m, o->init, s.params, err)) != 0)
        goto done;
    if ((rc = opt_create(&o->opt, n, &s.opt, err)) != 0 ||
        (rc = train_pass_create(s.m, o->device, o->gemm, o->batch, cap_T, false, &s.pass,
                                err)) != 0 ||
        (rc = train_pass_load(s.pass, TRAIN_W_POLICY, s.params, err)) != 0 ||
        (rc = model_sampler_create(s.m, EVAL_BATCH, eval_T, &s.sampler, err)) != 0 ||
        (rc = train_batch_create(&s.batch, o->batch, cap_T, err)) != 0)
        goto done;
    /* The folder is made once everything that can refuse the options has accepted them, so that
     * a refused run (an unusable --device among them) leaves nothing behind. */
    if ((rc = train_mkdir(o->out, err)) != 0)
        goto done;
    if (!o->quiet && o->device != TRAIN_DEVICE_CPU)
        fprintf(stderr, "sft: forward and backward on %s\n", train_pass_describe(s.pass));
    s.log_path = train_path(o->out, "metrics.jsonl");
    if (!s.log_path || !(s.log = fopen(s.log_path, "w"))) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create", s.log_path ? s.log_path : o->out);
        goto done;
    }

    double acc = train_eval_accuracy(s.m, s.params, s.sampler, EVAL_BATCH, &s.tok, &o->task,
                                     o->seed, o->eval_size, max_new);
    if ((rc = train_log_line(s.log, eval_line(0, acc), s.log_path, err)) != 0)
        goto done;
    long step = 0;
    double t_start = train_now();
    while (step < o->steps) {
        step++;
        double t0 = train_now();
        if ((rc = sft_fill(&s, o, step, err)) != 0)
            goto done;
        TrainBatch *b = &s.batch;
        if ((rc = train_pass_forward(s.pass, TRAIN_W_POLICY, b->tokens, b->targets, b->n, b->T,
                                     s.logp, NULL, err)) != 0)
            goto done;
        size_t cells = (size_t)b->n * b->T;
        long ntok = 0;
        for (size_t i = 0; i < cells; i++)
            ntok += b->mask[i];
        double loss = 0.0;
        for (size_t i = 0; i < cells; i++) {
            s.dlogp[i] = b->mask[i] ? -1.0f / (float)ntok : 0.0f;
            loss -= b->mask[i] ? (double)s.logp[i] : 0.0;
        }
        loss /= (double)ntok;
        if ((rc = train_pass_backward(s.pass, s.dlogp, s.grads, err)) != 0)
            goto done;
        double gnorm = 0.0, lr = 0.0;
        int skipped = opt_step(s.opt, s.params, s.grads, NULL, &gnorm, &lr);
        if (!skipped && (rc = train_pass_load(s.pass, TRAIN_W_POLICY, s.params, err)) != 0)
            goto done;
        double dt = train_now() - t0;
        json_t *line = json_pack("{s:I, s:f, s:f, s:f, s:b, s:I, s:f}", "step",
                                 (json_int_t)step, "loss", loss, "grad_norm",
                                 isfinite(gnorm) ? gnorm : -1.0, "lr", lr, "skipped", skipped,
                                 "tokens", (json_int_t)ntok, "step_time_s", dt);
        if ((rc = train_log_line(s.log, line, s.log_path, err)) != 0)
            goto done;
        bool last = step == o->steps;
        if ((o->eval_every > 0 && step % o->eval_every == 0) || last) {
            acc = train_eval_accuracy(s.m, s.params, s.sampler, EVAL_BATCH, &s.tok, &o->task,
                                      o->seed, o->eval_size, max_new);
            if ((rc = train_log_line(s.log, eval_line(step, acc), s.log_path, err)) != 0)
                goto done;
            if (!o->quiet)
                fprintf(stderr, "sft step %ld/%ld  loss %.4f  eval acc %.3f  %.1f s\n", step,
                        o->steps, loss, acc, train_now() - t_start);
            if (o->target_acc > 0 && acc >= o->target_acc)
                break;
        }
    }

    /* The folder holds bf16 weights: evaluate what is saved, not the float32 master. */
    train_round_bf16(s.params, n);
    acc = train_eval_accuracy(s.m, s.params, s.sampler, EVAL_BATCH, &s.tok, &o->task, o->seed,
                              o->eval_size, max_new);
    char *cfg_path = train_path(o->out, "config.json");
    char *model_path = train_path(o->out, "model.safetensors");
    char *sft_path = train_path(o->out, "sft.json");
    if (!cfg_path || !model_path || !sft_path) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
    } else {
        StMeta meta[] = {{"format", "pt"}};
        json_t *summary = json_pack("{s:o, s:I, s:I, s:f, s:s}",
                                    "options", train_options_json(o, "sft"),
                                    "steps_done", (json_int_t)step,
                                    "parameters", (json_int_t)n, "eval_acc_bf16", acc,
                                    "version", SS_VERSION);
        if ((rc = model_save_params(s.m, s.params, DT_BF16, model_path, meta, 1, err)) == 0 &&
            (rc = model_config_write(cfg_path, &cfg, "bfloat16", err)) == 0 &&
            (!s.tok.bpe || (rc = train_copy_tokenizer(o->init, o->out, err)) == 0))
            rc = train_write_json(sft_path, summary, err);
        else
            json_decref(summary);
        if (rc == 0 && !o->quiet)
            fprintf(stderr, "sft: %ld steps, eval accuracy of the bf16 model %.3f -> %s\n", step,
                    acc, o->out);
    }
    free(cfg_path);
    free(model_path);
    free(sft_path);
done:
    sft_free(&s);
    return rc;
}
