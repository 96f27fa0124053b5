/* config.json: reading the fields of a Hugging Face Qwen3, Qwen2 or Llama config into a
 * ModelConfig (refusing what the model does not implement), and writing one atomically. */
#include "train/model.h"

#include "formats/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An integer field; dflt < 0 means required. */
static int get_int(json_t *root, const char *path, const char *key, long long dflt, int *out,
                   SsError *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0)
            return ss_err(err, SS_EINPUT, "%s: missing field '%s'", path, key);
        *out = (int)dflt;
        return SS_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX)
        return ss_err(err, SS_EINPUT, "%s: field '%s' must be a positive integer", path, key);
    *out = (int)json_integer_value(v);
    return SS_OK;
}

static int get_real(json_t *root, const char *path, const char *key, double dflt, double *out,
                    SsError *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return SS_OK;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return ss_err(err, SS_EINPUT, "%s: field '%s' must be a number", path, key);
    *out = json_number_value(v);
    return SS_OK;
}

int model_config_read(const char *path, ModelConfig *cfg, SsError *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ss_err(err, SS_EINPUT, "%s: cannot read config: %s (line %d)", path, je.text,
                      je.line);
    int rc = SS_OK;
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(root)) {
        rc = ss_err(err, SS_EINPUT, "%s: not a JSON object", path);
        goto done;
    }
    json_t *mt = json_object_get(root, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (mt && (!type || (strcmp(type, "qwen3") != 0 && strcmp(type, "qwen2") != 0 &&
                         strcmp(type, "llama") != 0))) {
        rc = ss_err(err, SS_EINPUT, "%s: model_type %s is not qwen3, qwen2 or llama", path,
                    type ? type : "(not a string)");
        goto done;
    }
    cfg->arch = !type || strcmp(type, "qwen3") == 0 ? MODEL_ARCH_QWEN3
                : strcmp(type, "qwen2") == 0        ? MODEL_ARCH_QWEN2
                                                    : MODEL_ARCH_LLAMA;
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        rc = ss_err(err, SS_EINPUT, "%s: rope_scaling is not supported (only plain rotary "
                    "embedding; set it to null)", path);
        goto done;
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) &&
        (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0)) {
        rc = ss_err(err, SS_EINPUT, "%s: hidden_act must be silu", path);
        goto done;
    }
    /* qwen2 has q/k/v biases whatever the config says; attention_bias on llama and qwen3 also
     * puts a bias on o_proj, and mlp_bias on the MLP: neither is implemented. */
    const char *unsupported[] = {"attention_bias", "mlp_bias", "use_sliding_window"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(root, unsupported[i]);
        bool applies = i == 2 ? cfg->arch == MODEL_ARCH_QWEN2 : cfg->arch != MODEL_ARCH_QWEN2;
        if (applies && v && json_is_true(v)) {
            rc = ss_err(err, SS_EINPUT, "%s: %s true is not supported for model_type %s", path,
                        unsupported[i], model_arch_name(cfg->arch));
            goto done;
        }
    }
    if ((rc = get_int(root, path, "vocab_size", -1, &cfg->vocab_size, err)) ||
        (rc = get_int(root, path, "hidden_size", -1, &cfg->hidden_size, err)) ||
        (rc = get_int(root, path, "intermediate_size", -1, &cfg->intermediate_size, err)) ||
        (rc = get_int(root, path, "num_hidden_layers", -1, &cfg->num_hidden_layers, err)) ||
        (rc = get_int(root, path, "num_attention_heads", -1, &cfg->num_attention_heads, err)) ||
        (rc = get_int(root, path, "num_key_value_heads", cfg->num_attention_heads,
                      &cfg->num_key_value_heads, err)) ||
        (rc = get_int(root, path, "head_dim", cfg->hidden_size / cfg->num_attention_heads,
                      &cfg->head_dim, err)) ||
        (rc = get_int(root, path, "max_position_embeddings", -1, &cfg->max_position_embeddings,
                      err)) ||
        (rc = get_real(root, path, "rms_norm_eps", 1e-6, &cfg->rms_norm_eps, err)) ||
        (rc = get_real(root, path, "rope_theta", 10000.0, &cfg->rope_theta, err)) ||
        (rc = get_real(root, path, "initializer_range", 0.02, &cfg->initializer_range, err)))
        goto done;
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie)) {
        rc = ss_err(err, SS_EINPUT, "%s: field 'tie_word_embeddings' must be true or false", path);
        goto done;
    }
    cfg->tie_word_embeddings = tie ? json_is_true(tie) : false;
    if ((rc = model_config_validate(cfg, err)) != SS_OK) {
        err->code = rc = SS_EINPUT;
        ss_err_prefix(err, "%s", path);
    }
done:
    json_decref(root);
    return rc;
}

static int write_atomic(const char *path, const char *bytes, size_t len, SsError *err)
{
    char *tmp = atomic_tmp_path(path);
    if (!tmp)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = SS_OK;
    if (fd < 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, bytes + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", tmp, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (rc == SS_OK && fsync(fd) != 0)
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot flush: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == SS_OK)
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot close: %s", tmp, strerror(errno));
    if (rc == SS_OK && rename(tmp, path) != 0)
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot rename into place: %s", path, strerror(errno));
    if (rc != SS_OK)
        unlink(tmp);
    else
        atomic_sync_dir(path);
    free(tmp);
    return rc;
}

/* True when %.15g reads back as x (then config.json gets 1e-06, not 9.9999999999999995e-07). */
static bool short_exact(double x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", x);
    return strtod(buf, NULL) == x;
}

int model_config_write(const char *path, const ModelConfig *cfg, const char *torch_dtype,
                       SsError *err)
{
    int rc = model_config_validate(cfg, err);
    if (rc)
        return ss_err_prefix(err, "%s", path);
    const char *arch_class = cfg->arch == MODEL_ARCH_QWEN2   ? "Qwen2ForCausalLM"
                             : cfg->arch == MODEL_ARCH_LLAMA ? "LlamaForCausalLM"
                                                             : "Qwen3ForCausalLM";
    json_t *c = json_object(), *arch = json_array();
    int bad = !c || !arch || json_array_append_new(arch, json_string(arch_class));
    if (!bad) {
        bad |= json_object_set_new(c, "architectures", arch);
        arch = NULL;
    }
    if (cfg->arch == MODEL_ARCH_QWEN2)
        bad |= json_object_set_new(c, "use_sliding_window", json_false());
    else
        bad |= json_object_set_new(c, "attention_bias", json_false());
    if (cfg->arch == MODEL_ARCH_LLAMA)
        bad |= json_object_set_new(c, "mlp_bias", json_false());
    bad |= json_object_set_new(c, "attention_dropout", json_real(0.0));
    bad |= json_object_set_new(c, "head_dim", json_integer(cfg->head_dim));
    bad |= json_object_set_new(c, "hidden_act", json_string("silu"));
    bad |= json_object_set_new(c, "hidden_size", json_integer(cfg->hidden_size));
    bad |= json_object_set_new(c, "initializer_range", json_real(cfg->initializer_range));
    bad |= json_object_set_new(c, "intermediate_size", json_integer(cfg->intermediate_size));
    bad |= json_object_set_new(c, "max_position_embeddings",
                               json_integer(cfg->max_position_embeddings));
    bad |= json_object_set_new(c, "model_type", json_string(model_arch_name(cfg->arch)));
    bad |= json_object_set_new(c, "num_attention_heads", json_integer(cfg->num_attention_heads));
    bad |= json_object_set_new(c, "num_hidden_layers", json_integer(cfg->num_hidden_layers));
    bad |= json_object_set_new(c, "num_key_value_heads", json_integer(cfg->num_key_value_heads));
    bad |= json_object_set_new(c, "rms_norm_eps", json_real(cfg->rms_norm_eps));
    bad |= json_object_set_new(c, "rope_scaling", json_null());
    bad |= json_object_set_new(c, "rope_theta", json_real(cfg->rope_theta));
    bad |= json_object_set_new(c, "tie_word_embeddings", json_boolean(cfg->tie_word_embeddings));
    bad |= json_object_set_new(c, "torch_dtype", json_string(torch_dtype ? torch_dtype
                                                                          : "float32"));
    bad |= json_object_set_new(c, "use_cache", json_true());
    bad |= json_object_set_new(c, "vocab_size", json_integer(cfg->vocab_size));
    int prec = short_exact(cfg->initializer_range) && short_exact(cfg->rms_norm_eps) &&
                       short_exact(cfg->rope_theta)
                   ? 15
                   : 17;
    char *text = bad ? NULL : json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS |
                                                JSON_REAL_PRECISION(prec));
    json_decref(c);
    json_decref(arch);
    if (!text)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    size_t len = strlen(text);
    char *full = malloc(len + 2);
    if (!full) {
        free(text);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    memcpy(full, text, len);
    full[len] = '\n';
    free(text);
    rc = write_atomic(path, full, len + 1, err);
    free(full);
    return rc;
}
