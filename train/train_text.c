/* The loops' tokenizer (train_internal.h): the tasks' character-level tokenizer, or a real
 * model's BPE tokenizer with the tasks in their text form (tasks.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "train/train_internal.h"

#define TEXT_MAX 1024 /* a text prompt, answer or decoded response, bytes */

int train_tok_open(TrainTok *t, const char *dir, SsError *err)
{
    memset(t, 0, sizeof *t);
    t->bos = TOK_BOS;
    t->eos = TOK_EOS;
    if (!dir)
        return 0;
    char *path = train_path(dir, "tokenizer.json");
    if (!path)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    bool has = access(path, F_OK) == 0;
    free(path);
    if (!has)
        return 0;
    int rc = bpe_open_dir(dir, &t->bpe, err);
    if (rc != 0)
        return rc;
    t->bos = bpe_bos(t->bpe);
    t->eos = bpe_eos(t->bpe);
    if (t->eos < 0) {
        train_tok_close(t);
        return ss_err(err, SS_EINPUT, "%s/tokenizer_config.json: no eos_token (responses need "
                      "one to end)", dir);
    }
    return 0;
}

void train_tok_close(TrainTok *t)
{
    bpe_free(t->bpe);
    t->bpe = NULL;
}

int train_tok_vocab(const TrainTok *t)
{
    return t->bpe ? bpe_vocab_size(t->bpe) : tok_vocab_size();
}

/* A BPE token covers at least one byte, so the text's bytes bound its tokens. */
void train_tok_max_lengths(const TrainTok *t, const TaskSpec *spec, int *prompt_max,
                           int *answer_max)
{
    if (t->bpe)
        task_max_text_lengths(spec, prompt_max, answer_max);
    else
        task_max_lengths(spec, prompt_max, answer_max);
}

int train_encode_prompt(const TrainTok *t, const TaskProblem *p, int32_t *ids, int cap)
{
    if (!t->bpe) {
        if (cap < 1)
            return -1;
        ids[0] = TOK_BOS;
        int k = tok_encode(p->prompt, ids + 1, cap - 1);
        return k < 0 ? -1 : k + 1;
    }
    char text[TEXT_MAX];
    int len = task_text_prompt(p, text, sizeof text);
    int b = t->bos >= 0;
    if (len < 0 || cap < b)
        return -1;
    if (b)
        ids[0] = t->bos;
    int k = bpe_encode(t->bpe, text, (size_t)len, ids + b, cap - b);
    return k < 0 ? -1 : k + b;
}

int train_encode_answer(const TrainTok *t, const TaskProblem *p, int32_t *ids, int cap)
{
    int k;
    if (!t->bpe) {
        k = tok_encode(p->answer, ids, cap - 1);
    } else {
        char text[TEXT_MAX];
        int len = task_text_answer(p, text, sizeof text);
        k = len < 0 ? -1 : bpe_encode(t->bpe, text, (size_t)len, ids, cap - 1);
    }
    if (k < 0)
        return -1;
    ids[k++] = t->eos;
    return k;
}

double train_reward(const TrainTok *t, const TaskProblem *p, const int32_t *resp, int n)
{
    char text[TEXT_MAX];
    if (!t->bpe) {
        tok_decode(resp, n, text, sizeof text);
        return task_reward(p, text);
    }
    int k = 0;
    while (k < n && resp[k] != t->eos)
        k++;
    if (bpe_decode(t->bpe, resp, k, text, sizeof text) >= sizeof text)
        return 0.0; /* too long to hold an answer we would read */
    return task_reward_boxed(p, text);
}

/* Copies one file atomically; a missing source is not an error. */
static int copy_file(const char *from, const char *to, SsError *err)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return errno == ENOENT ? 0 : ss_err(err, SS_EINPUT, "%s: cannot open: %s", from,
                                            strerror(errno));
    char *tmp = atomic_tmp_path(to);
    FILE *out = tmp ? fopen(tmp, "wb") : NULL;
    int rc = 0;
    if (!out) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create", tmp ? tmp : to);
    } else {
        char buf[1 << 16];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, k, out) != k)
                rc = ss_err(err, SS_EOUTPUT, "%s: cannot write", tmp);
        if (ferror(in))
            rc = ss_err(err, SS_EINPUT, "%s: cannot read", from);
        if (fclose(out) != 0 && rc == 0)
            rc = ss_err(err, SS_EOUTPUT, "%s: cannot write", tmp);
        if (rc == 0 && rename(tmp, to) != 0)
            rc = ss_err(err, SS_EOUTPUT, "%s: cannot rename into place: %s", to, strerror(errno));
        if (rc != 0)
            unlink(tmp);
    }
    fclose(in);
    free(tmp);
    return rc;
}

int train_copy_tokenizer(const char *from, const char *to, SsError *err)
{
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names[0]; i++) {
        char *a = train_path(from, names[i]), *b = train_path(to, names[i]);
        rc = a && b ? copy_file(a, b, err) : ss_err(err, SS_EOUTPUT, "out of memory");
        free(a);
        free(b);
    }
    return rc;
}
