/* The trainer's weights on disk: the run's base, the bf16 (and optionally float32 master)
 * snapshots as .sdelta files, and the --resume state (float32 master weights and optimizer state,
 * committed by an atomic state.json). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "formats/dtype_encode.h"
#include "formats/sdelta/run.h"
#include "train/train_internal.h"

void train_round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)dtype_f32_to_bf16(x[i]) << 16;
        memcpy(&x[i], &bits, sizeof bits);
    }
}

int train_write_run_base(const Model *m, const float *params, const char *dir, bool master,
                         SsError *err)
{
    StMeta meta[] = {{"format", "pt"}};
    char *path = train_path(dir, RUN_BASE_NAME);
    char *mdir = train_path(dir, "master");
    char *mpath = mdir ? train_path(mdir, RUN_BASE_NAME) : NULL;
    int rc;
    if (!path || !mdir || !mpath)
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
    else if ((rc = model_save_params(m, params, DT_BF16, path, meta, 1, err)) == 0 && master &&
             (rc = train_mkdir(mdir, err)) == 0)
        rc = model_save_params(m, params, DT_F32, mpath, meta, 1, err);
    free(path);
    free(mdir);
    free(mpath);
    return rc;
}

/* One snapshot of data (the whole parameter buffer in dtype dt) under run folder dir. */
static int write_one(const Model *m, const void *data, DType dt, const char *dir, long step,
                     int threads, SsError *err)
{
    SdeltaTensorSrc *src = calloc(m->ntensors, sizeof *src);
    if (!src)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    size_t esz = dtype_size(dt);
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *t = &m->tensors[i];
        src[i] = (SdeltaTensorSrc){.name = t->name, .dtype = dt, .ndim = t->ndim,
                                   .shape = t->shape,
                                   .data = (const char *)data + t->offset * esz};
    }
    char step_text[32];
    snprintf(step_text, sizeof step_text, "%ld", step);
    StMeta meta[] = {{"step", step_text}, {"writer", "grpo-train " SS_VERSION}};
    RunWriteOptions opt = {.meta = meta, .nmeta = 2, .threads = threads};
    int rc = run_write_snapshot(dir, (uint64_t)step, src, m->ntensors, &opt, err);
    free(src);
    return rc;
}

int train_write_snapshot(const Model *m, const float *params, const char *dir, long step,
                         bool master, int threads, SsError *err)
{
    uint16_t *bf = malloc(m->nparams * sizeof *bf);
    if (!bf)
        return ss_err(err, SS_EOUTPUT, "out of memory for the bf16 export");
    dtype_encode_bf16(params, bf, m->nparams);
    int rc = write_one(m, bf, DT_BF16, dir, step, threads, err);
    free(bf);
    if (rc == 0 && master) {
        char *mdir = train_path(dir, "master");
        rc = mdir ? write_one(m, params, DT_F32, mdir, step, threads, err)
                  : ss_err(err, SS_EOUTPUT, "out of memory");
        free(mdir);
    }
    return rc;
}

int train_write_adapter(const Model *m, const Lora *lora, const float *factors, const char *dir,
                        long step, const char *base_name, SsError *err)
{
    char name[64];
    snprintf(name, sizeof name, "adapters/step-%06ld", step);
    char *adir = train_path(dir, "adapters");
    char *sdir = train_path(dir, name);
    int rc;
    if (!adir || !sdir)
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
    else if ((rc = train_mkdir(adir, err)) == 0)
        rc = lora_save_adapter(m, lora, factors, sdir, base_name, err);
    free(adir);
    free(sdir);
    return rc;
}

/* ---- resume state ---- */

static char *state_file(const char *dir, const char *stem, long step, const char *ext)
{
    char name[64];
    snprintf(name, sizeof name, "state/%s-%06ld%s", stem, step, ext);
    return train_path(dir, name);
}

static int write_optimizer(const Optimizer *opt, const char *path, SsError *err)
{
    char *tmp = atomic_tmp_path(path);
    if (!tmp)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        rc = opt_state_write(opt, f, err);
        int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (rc == 0 && (bad || rename(tmp, path) != 0))
            rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", path, strerror(errno));
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* Removes DIR/state/ files of other steps than keep. */
static void prune_state(const char *sdir, long keep)
{
    DIR *d = opendir(sdir);
    if (!d)
        return;
    struct dirent *e;
    char mine_p[64], mine_o[64], mine_l[64];
    snprintf(mine_p, sizeof mine_p, "params-%06ld.safetensors", keep);
    snprintf(mine_o, sizeof mine_o, "optimizer-%06ld.bin", keep);
    snprintf(mine_l, sizeof mine_l, "lora-%06ld.safetensors", keep);
    while ((e = readdir(d))) {
        bool ours = strncmp(e->d_name, "params-", 7) == 0 ||
                    strncmp(e->d_name, "optimizer-", 10) == 0 ||
                    strncmp(e->d_name, "lora-", 5) == 0;
        if (!ours || strcmp(e->d_name, mine_p) == 0 || strcmp(e->d_name, mine_o) == 0 ||
            strcmp(e->d_name, mine_l) == 0)
            continue;
        char *p = train_path(sdir, e->d_name);
        if (p)
            unlink(p);
        free(p);
    }
    closedir(d);
}

int train_state_save(const Model *m, const float *params, const Optimizer *opt,
                     const Lora *lora, const float *factors, const char *dir, long step,
                     SsError *err)
{
    char *sdir = train_path(dir, "state");
    char *ppath = state_file(dir, "params", step, ".safetensors");
    char *opath = state_file(dir, "optimizer", step, ".bin");
    char *lpath = state_file(dir, "lora", step, ".safetensors");
    char *jpath = train_path(dir, "state/state.json");
    int rc;
    if (!sdir || !ppath || !opath || !lpath || !jpath) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    if ((rc = train_mkdir(sdir, err)) != 0 ||
        (rc = model_save_params(m, params, DT_F32, ppath, NULL, 0, err)) != 0 ||
        (rc = write_optimizer(opt, opath, err)) != 0 ||
        (lora && (rc = lora_save_factors(m, lora, factors, lpath, err)) != 0))
        goto done;
    rc = train_write_json(jpath, json_pack("{s:I}", "step", (json_int_t)step), err);
    if (rc == 0)
        prune_state(sdir, step);
done:
    free(sdir);
    free(ppath);
    free(opath);
    free(lpath);
    free(jpath);
    return rc;
}

int train_state_load(const Model *m, float *params, Optimizer *opt, const Lora *lora,
                     float *factors, const char *dir, long *step, SsError *err)
{
    *step = 0;
    char *jpath = train_path(dir, "state/state.json");
    if (!jpath)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    if (access(jpath, F_OK) != 0) {
        free(jpath);
        return 0;
    }
    json_error_t jerr;
    json_t *j = json_load_file(jpath, JSON_REJECT_DUPLICATES, &jerr);
    json_t *js = j ? json_object_get(j, "step") : NULL;
    int rc = 0;
    if (!json_is_integer(js) || json_integer_value(js) < 0) {
        rc = ss_err(err, SS_EINPUT, "%s: not a state file (%s)", jpath,
                    j ? "no integer \"step\"" : jerr.text);
        goto done;
    }
    long s = (long)json_integer_value(js);
    char *ppath = state_file(dir, "params", s, ".safetensors");
    char *opath = state_file(dir, "optimizer", s, ".bin");
    char *lpath = state_file(dir, "lora", s, ".safetensors");
    if (!ppath || !opath || !lpath) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
    } else if ((rc = model_load_params(m, ppath, params, err)) == 0) {
        FILE *f = fopen(opath, "rb");
        if (!f)
            rc = ss_err(err, SS_EINPUT, "%s: cannot open: %s", opath, strerror(errno));
        else {
            rc = opt_state_read(opt, f, err);
            fclose(f);
        }
    }
    if (rc == 0 && lora)
        rc = lora_load_factors(m, lora, lpath, factors, err);
    if (rc == 0)
        *step = s;
    free(ppath);
    free(opath);
    free(lpath);
done:
    json_decref(j);
    free(jpath);
    return rc;
}

/* Removes the temporary files ("NAME.tmp.PID") an interrupted writer left in one folder. */
static void remove_tmp_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".tmp."))
            continue;
        char *p = train_path(dir, e->d_name);
        if (p)
            unlink(p);
        free(p);
    }
    closedir(d);
}

void train_remove_stale_tmp(const char *run_dir)
{
    static const char *const sub[] = {"", "snapshots", "master", "master/snapshots", "state"};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        char *p = sub[i][0] ? train_path(run_dir, sub[i]) : strdup(run_dir);
        if (p)
            remove_tmp_in(p);
        free(p);
    }
}
