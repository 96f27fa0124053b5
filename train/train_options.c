/* grpo-train's option defaults and model presets. */
#include <string.h>
#include <unistd.h>

#include "train/trainer.h"

void train_options_default(TrainOptions *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores > 0 ? (int)cores : 1;
    o->steps = 100;
    o->eval_every = 10;
    o->eval_size = 200;
    opt_config_default(OPT_SGD, &o->opt);
    o->device = TRAIN_DEVICE_CPU; /* the main makes --device cuda's GEMMs bf16 unless --gemm */
    o->gemm = TM_GEMM_F32;
    o->batch = 64;
    o->target_acc = 0.0;
    o->prompts = 8;
    o->group = 8;
    o->max_new = 0; /* 0: the task's longest answer plus 4 */
    o->temperature = 1.0f;
    o->adv_mode = GRPO_ADV_STD;
    o->adv_eps = 1e-6f;
    o->loss.clip_low = 0.2f;
    o->loss.clip_high = 0.2f;
    o->loss.beta = 0.001f;
    o->loss.agg = GRPO_AGG_TOKEN_MEAN;
    o->mini_batches = 1;
    o->epochs = 1;
    o->snapshot_every = 10;
    train_model_preset("tiny", &o->model, NULL);
}

int train_model_preset(const char *name, ModelConfig *cfg, SsError *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = tok_vocab_size();
    cfg->num_hidden_layers = 4;
    cfg->num_attention_heads = 4;
    cfg->num_key_value_heads = 2;
    cfg->max_position_embeddings = 128;
    cfg->rms_norm_eps = 1e-6;
    cfg->rope_theta = 10000.0;
    cfg->initializer_range = 0.02;
    cfg->tie_word_embeddings = true;
    if (strcmp(name, "tiny") == 0) {
        cfg->hidden_size = 128;
        cfg->head_dim = 32;
        cfg->intermediate_size = 384;
    } else if (strcmp(name, "small") == 0) {
        cfg->hidden_size = 256;
        cfg->head_dim = 64;
        cfg->intermediate_size = 768;
    } else {
        return ss_err(err, SS_EUSAGE, "unknown model preset '%s' (tiny, small)", name);
    }
    return 0;
}
