/* config.json for ckpt-synth's folder outputs: written with the fields of Qwen3's released
 * configs, or recovered from a checkpoint's tensors (for update outputs and --stripes), plus the
 * small atomic text-file writer that config.json and the shard index share. */
#include "train/synth.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int synth_file_write_atomic(const char *path, const char *bytes, size_t len, SsError *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return ss_err(err, SS_EOUTPUT, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", tmp, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, bytes + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", tmp, strerror(e));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return ss_err(err, SS_EOUTPUT, "%s: cannot flush: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ss_err(err, SS_EOUTPUT, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return SS_OK;
}

static const char *torch_dtype_name(DType dt)
{
    switch (dt) {
    case DT_BF16: return "bfloat16";
    case DT_F16: return "float16";
    case DT_F32: return "float32";
    case DT_F64: return "float64";
    default: return dtype_name(dt);
    }
}

/* Sets key to value in obj; returns -1 when value is NULL or the set fails (jansson steals it). */
static int obj_set(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

int synth_config_write(const char *dir, const SynthShape *s, DType dt, SsError *err)
{
    json_t *c = json_object();
    json_t *arch = json_array();
    if (!c || !arch || json_array_append_new(arch, json_string("Qwen3ForCausalLM")) != 0) {
        json_decref(c);
        json_decref(arch);
        return ss_err(err, SS_EOUTPUT, "%s/config.json: out of memory", dir);
    }
    int bad = obj_set(c, "architectures", arch);
    bad |= obj_set(c, "attention_bias", json_false());
    bad |= obj_set(c, "attention_dropout", json_real(0.0));
    /* Qwen3's special token ids, only where they exist in the vocabulary. */
    if (s->vocab > 151645) {
        bad |= obj_set(c, "bos_token_id", json_integer(151643));
        bad |= obj_set(c, "eos_token_id", json_integer(151645));
    }
    bad |= obj_set(c, "head_dim", json_integer(s->head_dim));
    bad |= obj_set(c, "hidden_act", json_string("silu"));
    bad |= obj_set(c, "hidden_size", json_integer(s->hidden));
    bad |= obj_set(c, "initializer_range", json_real(0.02));
    bad |= obj_set(c, "intermediate_size", json_integer(s->intermediate));
    bad |= obj_set(c, "max_position_embeddings", json_integer(40960));
    bad |= obj_set(c, "max_window_layers", json_integer(s->layers));
    bad |= obj_set(c, "model_type", json_string("qwen3"));
    bad |= obj_set(c, "num_attention_heads", json_integer(s->heads));
    bad |= obj_set(c, "num_hidden_layers", json_integer(s->layers));
    bad |= obj_set(c, "num_key_value_heads", json_integer(s->kv_heads));
    bad |= obj_set(c, "rms_norm_eps", json_real(1e-6));
    bad |= obj_set(c, "rope_scaling", json_null());
    bad |= obj_set(c, "rope_theta", json_integer(1000000));
    bad |= obj_set(c, "sliding_window", json_null());
    bad |= obj_set(c, "tie_word_embeddings", json_boolean(s->tied));
    bad |= obj_set(c, "torch_dtype", json_string(torch_dtype_name(dt)));
    bad |= obj_set(c, "transformers_version", json_string("4.51.0"));
    bad |= obj_set(c, "use_cache", json_true());
    bad |= obj_set(c, "use_sliding_window", json_false());
    bad |= obj_set(c, "vocab_size", json_integer(s->vocab));
    char *text = bad ? NULL
                     : json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    json_decref(c);
    if (!text)
        return ss_err(err, SS_EOUTPUT, "%s/config.json: out of memory", dir);
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        free(text);
        return ss_err(err, SS_EOUTPUT, "%s/config.json: out of memory", dir);
    }
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = (n < 0 || (size_t)n >= sizeof path)
                 ? ss_err(err, SS_EOUTPUT, "%s: path too long", dir)
                 : synth_file_write_atomic(path, withnl, len + 1, err);
    free(withnl);
    return rc;
}

/* ---- inferring a shape from tensors ---- */

static const StTensor *find_layer(const StCheckpoint *ck, uint32_t layer, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "model.layers.%u.%s", layer, suffix);
    return st_find(ck, name);
}

static int is_2d(const StTensor *t)
{
    return t && t->ndim == 2;
}

int synth_shape_infer(const StCheckpoint *ck, SynthShape *s, DType *dt, SsError *err)
{
    memset(s, 0, sizeof *s);
    const StTensor *emb = st_find(ck, "model.embed_tokens.weight");
    if (!is_2d(emb))
        return ss_err(err, SS_EINPUT, "%s: no 2-D model.embed_tokens.weight", ck->path);
    uint32_t layers = 0;
    for (size_t i = 0; i < ck->ntensors; i++) {
        int layer;
        synth_kind_of(ck->tensors[i]->name, &layer);
        if (layer >= 0 && (uint32_t)layer + 1 > layers)
            layers = (uint32_t)layer + 1;
    }
    if (layers == 0)
        return ss_err(err, SS_EINPUT, "%s: no model.layers.N tensors", ck->path);
    const StTensor *qn = find_layer(ck, 0, "self_attn.q_norm.weight");
    const StTensor *q = find_layer(ck, 0, "self_attn.q_proj.weight");
    const StTensor *k = find_layer(ck, 0, "self_attn.k_proj.weight");
    const StTensor *g = find_layer(ck, 0, "mlp.gate_proj.weight");
    if (!qn || qn->ndim != 1 || !is_2d(q) || !is_2d(k) || !is_2d(g) || qn->shape[0] == 0)
        return ss_err(err, SS_EINPUT, "%s: layer 0 lacks Qwen3's q_norm, q_proj, k_proj or "
                      "gate_proj", ck->path);
    uint64_t D = qn->shape[0];
    if (q->shape[0] % D || k->shape[0] % D || emb->shape[0] > UINT32_MAX ||
        emb->shape[1] > UINT32_MAX || g->shape[0] > UINT32_MAX || D > UINT32_MAX)
        return ss_err(err, SS_EINPUT, "%s: tensor shapes are not Qwen3's", ck->path);
    s->layers = layers;
    s->vocab = (uint32_t)emb->shape[0];
    s->hidden = (uint32_t)emb->shape[1];
    s->head_dim = (uint32_t)D;
    s->heads = (uint32_t)(q->shape[0] / D);
    s->kv_heads = (uint32_t)(k->shape[0] / D);
    s->intermediate = (uint32_t)g->shape[0];
    s->tied = st_find(ck, "lm_head.weight") == NULL;
    *dt = emb->dtype;
    SsError sub;
    if (synth_shape_check(s, *dt, &sub) != 0)
        return ss_err(err, SS_EINPUT, "%s: tensor shapes are not Qwen3's: %s", ck->path, sub.msg);
    return SS_OK;
}
