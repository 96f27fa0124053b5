/* Figures from run folders: training dynamics (reward, KL, entropy, response length) and
 * validation accuracy against the step. */
#include "plots/plot_fig_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- training dynamics and validation accuracy (run folders) ---- */

int fig_training(PlotCtx *c, SsError *err)
{
    StrBuf files = {0}, titles = {0}, vars = {0};
    int rc = 0, has[4] = {0, 0, 0, 0};
    size_t nruns = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_RUN)
            continue;
        if (!in->m.present) {
            pout_skip(c->o, "training", "%s: no metrics.jsonl", in->path);
            continue;
        }
        if (!in->m.nstep) {
            pout_skip(c->o, "training", "%s/metrics.jsonl: no step lines", in->path);
            continue;
        }
        char name[200];
        snprintf(name, sizeof name, "training-%s.dat", in->flabel);
        DataFile d;
        char header[512];
        snprintf(header, sizeof header,
                 "training dynamics of run %s (from %s/metrics.jsonl)\n"
                 "step  reward_mean  kl(k3, nats)  entropy(nats/token)  resp_len_mean(tokens)",
                 in->label, in->path);
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            break;
        for (size_t s = 0; s < in->m.nstep; s++) {
            pd_num(d.f, in->m.step[s]);
            double v[4] = {in->m.reward[s], in->m.kl[s], in->m.entropy[s], in->m.resp_len[s]};
            for (int k = 0; k < 4; k++) {
                fputc(' ', d.f);
                pd_num(d.f, v[k]);
                has[k] |= isfinite(v[k]);
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        pf_words_add(&files, d.rel);
        pf_words_add(&titles, in->label);
        pd_free(&d);
        nruns++;
    }
    if (!rc && !nruns && !pf_count_kind(c, PIN_RUN))
        pout_skip(c->o, "training", "no run folder (RUN/ with metrics.jsonl) among the inputs");
    if (!rc && nruns) {
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        char hs[32];
        snprintf(hs, sizeof hs, "%d %d %d %d", has[0], has[1], has[2], has[3]);
        pv_str(&vars, "has", hs);
        char note[64];
        snprintf(note, sizeof note, "%zu run%s", nruns, nruns == 1 ? "" : "s");
        rc = pout_draw(c->o, "training", "training", &vars, note, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&vars);
    return rc;
}

int fig_eval(PlotCtx *c, SsError *err)
{
    StrBuf files = {0}, titles = {0}, vars = {0};
    int rc = 0;
    size_t nruns = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_RUN || !in->m.present)
            continue;
        if (!in->m.neval) {
            pout_skip(c->o, "eval_acc", "%s/metrics.jsonl: no eval_acc lines", in->path);
            continue;
        }
        char name[200], header[512];
        snprintf(name, sizeof name, "eval_acc-%s.dat", in->flabel);
        snprintf(header, sizeof header,
                 "validation accuracy of run %s (from %s/metrics.jsonl)\n"
                 "step  eval_acc(fraction correct, greedy decoding)", in->label, in->path);
        DataFile d;
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            break;
        for (size_t s = 0; s < in->m.neval; s++) {
            pd_num(d.f, in->m.eval_step[s]);
            fputc(' ', d.f);
            pd_num(d.f, in->m.eval_acc[s]);
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        pf_words_add(&files, d.rel);
        pf_words_add(&titles, in->label);
        pd_free(&d);
        nruns++;
    }
    if (!rc && !nruns && !pf_count_kind(c, PIN_RUN))
        pout_skip(c->o, "eval_acc", "no run folder (RUN/ with metrics.jsonl) among the inputs");
    if (!rc && nruns) {
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        rc = pout_draw(c->o, "eval_acc", "eval_acc", &vars, NULL, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&vars);
    return rc;
}
