/* The trainers' logs and clocks: metrics.jsonl lines, run.json and sft.json, peak RSS, and the
 * option set as JSON (what run.json records and --resume compares). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "train/train_internal.h"

double train_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t train_peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

int train_log_line(FILE *f, json_t *obj, const char *path, SsError *err)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(obj);
    if (!text)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory for a log line", path);
    int bad = fprintf(f, "%s\n", text) < 0 || fflush(f) != 0;
    free(text);
    if (bad)
        return ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}

int train_write_json(const char *path, json_t *obj, SsError *err)
{
    char *tmp = atomic_tmp_path(path);
    if (!tmp) {
        json_decref(obj);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    int rc = 0;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    int bad = json_dumpf(obj, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
              != 0;
    bad |= fputc('\n', f) == EOF;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    atomic_sync_dir(path);
done:
    json_decref(obj);
    free(tmp);
    return rc;
}

char *train_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int train_mkdir(const char *dir, SsError *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        return ss_err(err, SS_EOUTPUT, "%s: exists and is not a folder", dir);
    }
    /* Parents first, as mkdir -p does. */
    char *parent = strdup(dir);
    if (!parent)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    char *slash = strrchr(parent, '/');
    while (slash && slash > parent && slash[1] == '\0') { /* trailing slashes */
        *slash = '\0';
        slash = strrchr(parent, '/');
    }
    int rc = 0;
    if (slash && slash != parent) {
        *slash = '\0';
        rc = train_mkdir(parent, err);
    }
    free(parent);
    if (rc == 0 && mkdir(dir, 0777) != 0 && errno != EEXIST)
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create the folder: %s", dir, strerror(errno));
    return rc;
}

static json_t *model_json(const ModelConfig *c)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:b}",
                     "vocab_size", c->vocab_size, "hidden_size", c->hidden_size,
                     "intermediate_size", c->intermediate_size,
                     "num_hidden_layers", c->num_hidden_layers,
                     "num_attention_heads", c->num_attention_heads,
                     "num_key_value_heads", c->num_key_value_heads, "head_dim", c->head_dim,
                     "max_position_embeddings", c->max_position_embeddings,
                     "rms_norm_eps", c->rms_norm_eps, "rope_theta", c->rope_theta,
                     "initializer_range", c->initializer_range,
                     "tie_word_embeddings", c->tie_word_embeddings);
}

static json_t *opt_json(const OptConfig *c)
{
    json_t *j = json_pack("{s:s, s:f}", "name", opt_kind_name(c->kind), "lr", c->lr);
    if (c->kind == OPT_SGD) {
        json_object_set_new(j, "momentum", json_real(c->momentum));
    } else {
        json_object_set_new(j, "beta1", json_real(c->beta1));
        json_object_set_new(j, "beta2", json_real(c->beta2));
        json_object_set_new(j, "eps", json_real(c->eps));
        json_object_set_new(j, "weight_decay", json_real(c->weight_decay));
    }
    json_object_set_new(j, "warmup_steps", json_integer(c->warmup_steps));
    json_object_set_new(j, "max_grad_norm", json_real(c->max_grad_norm));
    return j;
}

json_t *train_options_json(const TrainOptions *o, const char *mode)
{
    char task[256];
    task_spec_format(&o->task, task, sizeof task);
    json_t *j = json_pack("{s:s, s:s, s:I, s:i, s:I, s:I, s:i}", "mode", mode, "task", task,
                          "seed", (json_int_t)o->seed, "threads", o->threads, "steps",
                          (json_int_t)o->steps, "eval_every", (json_int_t)o->eval_every,
                          "eval_size", o->eval_size);
    json_object_set_new(j, "optimizer", opt_json(&o->opt));
    /* Present only with --device cuda, so that the options of CPU runs keep their form (and
     * --resume of runs from before the option). */
    if (o->device == TRAIN_DEVICE_CUDA)
        json_object_set_new(j, "device", json_pack("{s:s, s:s}", "name", "cuda", "gemm",
                                                   o->gemm == TM_GEMM_BF16 ? "bf16" : "f32"));
    if (strcmp(mode, "sft") == 0) {
        if (o->init) /* the model is the folder's */
            json_object_set_new(j, "init", json_string(o->init));
        else
            json_object_set_new(j, "model", model_json(&o->model));
        json_object_set_new(j, "batch", json_integer(o->batch));
        json_object_set_new(j, "target_acc", json_real(o->target_acc));
        return j;
    }
    json_object_set_new(j, "init", json_string(o->init ? o->init : ""));
    json_object_set_new(j, "prompts", json_integer(o->prompts));
    json_object_set_new(j, "group", json_integer(o->group));
    json_object_set_new(j, "max_new", json_integer(o->max_new));
    json_object_set_new(j, "temperature", json_real(o->temperature));
    json_object_set_new(j, "advantage", json_string(o->adv_mode == GRPO_ADV_STD ? "grpo"
                                                                                  : "drgrpo"));
    json_object_set_new(j, "adv_eps", json_real(o->adv_eps));
    json_object_set_new(j, "clip_low", json_real(o->loss.clip_low));
    json_object_set_new(j, "clip_high", json_real(o->loss.clip_high));
    json_object_set_new(j, "kl_beta", json_real(o->loss.beta));
    json_object_set_new(j, "loss_agg", json_string(grpo_agg_name(o->loss.agg)));
    json_object_set_new(j, "mini_batches", json_integer(o->mini_batches));
    json_object_set_new(j, "epochs", json_integer(o->epochs));
    json_object_set_new(j, "snapshot_every", json_integer(o->snapshot_every));
    json_object_set_new(j, "save_master", json_boolean(o->save_master));
    /* Present only when used, so that the options of runs without them keep their form. */
    if (o->lora_rank > 0)
        json_object_set_new(j, "lora", json_pack("{s:i, s:f}", "r", o->lora_rank, "alpha",
                                                 o->lora_alpha > 0 ? o->lora_alpha
                                                                   : (double)o->lora_rank));
    if (o->mask_path)
        json_object_set_new(j, "mask", json_string(o->mask_path));
    return j;
}
