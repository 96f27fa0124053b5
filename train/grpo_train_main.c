/* grpo-train: the lean GRPO trainer's command line. A thin main: parses options into
 * TrainOptions, calls train_sft or train_grpo (train/trainer.h), prints errors. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"
#include "kernels/blas_threads.h"

static const char usage_text[] =
"usage: grpo-train sft -o OUT [options]\n"
"       grpo-train grpo --init BASE -o RUN [options]\n"
"       grpo-train --help | --version\n"
"\n"
"sft: supervised warm-up of a new Qwen3-style model on a task's reference answers; writes the\n"
"     Hugging Face model folder OUT (config.json, model.safetensors in bf16, sft.json,\n"
"     metrics.jsonl).\n"
"grpo: GRPO from the model folder BASE; writes the run folder RUN (base.safetensors,\n"
"     snapshots/step-NNNNNN.sdelta, run.json, metrics.jsonl, state/), which sparsity-scan reads\n"
"     as RUN@base, RUN@STEP, RUN@latest. See docs/grpo-train.md.\n"
"\n"
"common options:\n"
"  -o, --output DIR       the folder to write (required)\n"
"  --task SPEC            add:N, mul:N, countdown:N, or a comma-separated mixture (sft default\n"
"                         add:3; grpo default: the task in BASE/sft.json)\n"
"  --steps N              optimizer steps (sft) or GRPO steps (grpo) (default 3000 / 100)\n"
"  --eval-every N         greedy eval accuracy every N steps (default 100 / 10; 0: start and end)\n"
"  --eval-size N          eval-split problems per evaluation (default 200)\n"
"  --seed S               64-bit seed (default 1); the same seed, options and --threads give\n"
"                         bit-identical weights\n"
"  --threads N            OpenBLAS threads (default: all cores)\n"
"  --quiet                no progress on stderr\n"
"  --device cpu|cuda      where the training forward and backward run (default cpu); cuda:\n"
"                         kernels/train_model.h on the GPU, float32 weights and gradients on\n"
"                         the device; sampling and the optimizer stay on the CPU\n"
"  --gemm f32|bf16        --device cuda's GEMM inputs: float32, or bf16 with float32\n"
"                         accumulation (default bf16; --device cpu: f32 only)\n"
"\n"
"optimizer options:\n"
"  --optimizer sgd|adamw  (default sgd for grpo, adamw for sft)\n"
"  --lr X                 learning rate (defaults: grpo sgd 0.1, grpo adamw 1e-5, sft 1e-3)\n"
"  --momentum M           sgd momentum (default 0: no optimizer state at all)\n"
"  --beta1 B --beta2 B --adam-eps E --weight-decay W   adamw (0.9, 0.999, 1e-8, 0.01)\n"
"  --warmup-steps N       linear learning-rate warm-up (default 0; sft 100)\n"
"  --max-grad-norm X      clip the global gradient norm (default 1.0; 0: off)\n"
"\n"
"sft options:\n"
"  --init HF_DIR          fine-tune a Hugging Face Qwen3/Qwen2/Llama folder instead\n"
"  --preset tiny|small    model size (default tiny: about 0.8M parameters; small: 3.2M)\n"
"  --config FILE          a config.json instead of a preset\n"
"  --layers N --hidden H --intermediate I --heads Q --kv-heads K --head-dim D\n"
"  --max-positions N --untied   override the preset\n"
"  --batch N              sequences per step (default 64)\n"
"  --target-acc X         stop once eval accuracy reaches X (default 0: run all steps)\n"
"\n"
"grpo options:\n"
"  --init BASE            the model folder to start from (config.json + safetensors; with\n"
"                         tokenizer.json: text prompts, \\boxed{} answers)\n"
"  --prompts P            prompts per step (default 8)\n"
"  --group G              samples per prompt (default 8)\n"
"  --max-new N            response length cap in tokens (default: the task's longest answer + 4)\n"
"  --temperature T        sampling temperature (default 1.0)\n"
"  --advantage grpo|drgrpo  (r - mean) / (std + eps), or Dr.GRPO's r - mean (default grpo)\n"
"  --clip-low E --clip-high E  surrogate clip range 1-E .. 1+E (default 0.2, 0.2)\n"
"  --kl-coef B            k3 KL to the base policy, coefficient (default 0.001; 0: off)\n"
"  --loss-agg MODE        token-mean | seq-mean-token-mean | seq-mean-token-sum-norm\n"
"                         (default token-mean)\n"
"  --mini-batches M       updates per step, each on 1/M of the sequences (default 1)\n"
"  --epochs E             passes over each step's batch (default 1)\n"
"  --snapshot-every N     write a snapshot every N steps (default 10; always at the end)\n"
"  --save-master          also snapshot the float32 master weights under RUN/master/\n"
"  --resume               continue RUN from its last snapshot (same options required)\n"
"  --lora-rank R          train LoRA factors of rank R on every q/k/v/o/gate/up/down_proj\n"
"                         (base frozen; snapshots hold the merged weights, and each snapshot's\n"
"                         factors go to RUN/adapters/step-NNNNNN/ as a PEFT adapter)\n"
"  --lora-alpha A         LoRA scale A / R (default A = R: scale 1)\n"
"  --mask MASKS.h5        update only the elements marked in the /masks of a\n"
"                         `sparsity-scan X Y --h5 MASKS.h5 --masks` report (every model tensor\n"
"                         needs one); not with --lora-rank\n"
"\n"
"exit status: 0 ok, 1 usage, 2 bad input, 4 cannot write\n";

enum {
    O_TASK = 256, O_STEPS, O_EVAL_EVERY, O_EVAL_SIZE, O_SEED, O_THREADS, O_QUIET, O_OPTIMIZER,
    O_LR, O_MOMENTUM, O_BETA1, O_BETA2, O_ADAM_EPS, O_WD, O_WARMUP, O_MAX_GRAD_NORM, O_PRESET,
    O_CONFIG, O_LAYERS, O_HIDDEN, O_INTER, O_HEADS, O_KV, O_HEAD_DIM, O_MAX_POS, O_UNTIED,
    O_BATCH, O_TARGET_ACC, O_INIT, O_PROMPTS, O_GROUP, O_MAX_NEW, O_TEMP, O_ADV, O_CLIP_LOW,
    O_CLIP_HIGH, O_KL, O_AGG, O_MINI, O_EPOCHS, O_SNAP, O_SAVE_MASTER, O_RESUME, O_HELP,
    O_VERSION, O_LORA_RANK, O_LORA_ALPHA, O_MASK, O_DEVICE, O_GEMM
};

static const struct option long_opts[] = {
    {"output", required_argument, 0, 'o'}, {"task", required_argument, 0, O_TASK},
    {"steps", required_argument, 0, O_STEPS}, {"eval-every", required_argument, 0, O_EVAL_EVERY},
    {"eval-size", required_argument, 0, O_EVAL_SIZE}, {"seed", required_argument, 0, O_SEED},
    {"threads", required_argument, 0, O_THREADS}, {"quiet", no_argument, 0, O_QUIET},
    {"optimizer", required_argument, 0, O_OPTIMIZER}, {"lr", required_argument, 0, O_LR},
    {"momentum", required_argument, 0, O_MOMENTUM}, {"beta1", required_argument, 0, O_BETA1},
    {"beta2", required_argument, 0, O_BETA2}, {"adam-eps", required_argument, 0, O_ADAM_EPS},
    {"weight-decay", required_argument, 0, O_WD},
    {"warmup-steps", required_argument, 0, O_WARMUP},
    {"max-grad-norm", required_argument, 0, O_MAX_GRAD_NORM},
    {"preset", required_argument, 0, O_PRESET}, {"config", required_argument, 0, O_CONFIG},
    {"layers", required_argument, 0, O_LAYERS}, {"hidden", required_argument, 0, O_HIDDEN},
    {"intermediate", required_argument, 0, O_INTER}, {"heads", required_argument, 0, O_HEADS},
    {"kv-heads", required_argument, 0, O_KV}, {"head-dim", required_argument, 0, O_HEAD_DIM},
    {"max-positions", required_argument, 0, O_MAX_POS}, {"untied", no_argument, 0, O_UNTIED},
    {"batch", required_argument, 0, O_BATCH}, {"target-acc", required_argument, 0, O_TARGET_ACC},
    {"init", required_argument, 0, O_INIT}, {"prompts", required_argument, 0, O_PROMPTS},
    {"group", required_argument, 0, O_GROUP}, {"max-new", required_argument, 0, O_MAX_NEW},
    {"temperature", required_argument, 0, O_TEMP}, {"advantage", required_argument, 0, O_ADV},
    {"clip-low", required_argument, 0, O_CLIP_LOW},
    {"clip-high", required_argument, 0, O_CLIP_HIGH}, {"kl-coef", required_argument, 0, O_KL},
    {"loss-agg", required_argument, 0, O_AGG}, {"mini-batches", required_argument, 0, O_MINI},
    {"epochs", required_argument, 0, O_EPOCHS},
    {"snapshot-every", required_argument, 0, O_SNAP},
    {"save-master", no_argument, 0, O_SAVE_MASTER}, {"resume", no_argument, 0, O_RESUME},
    {"lora-rank", required_argument, 0, O_LORA_RANK},
    {"lora-alpha", required_argument, 0, O_LORA_ALPHA}, {"mask", required_argument, 0, O_MASK},
    {"device", required_argument, 0, O_DEVICE}, {"gemm", required_argument, 0, O_GEMM},
    {"help", no_argument, 0, O_HELP}, {"version", no_argument, 0, O_VERSION}, {0, 0, 0, 0}};

/* --help: the usage on stdout, exit status 0 even when the reader stops early (`grpo-train --help
 * | grep -q ...` under pipefail: no SIGPIPE death once grep has seen its match). */
static int print_usage(void)
{
    signal(SIGPIPE, SIG_IGN);
    fputs(usage_text, stdout);
    return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "grpo-train: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(grpo-train --help lists the options)\n");
    return 1;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

/* The task an sft folder was trained on (BASE/sft.json), into out; false when unknown. */
static bool base_task(const char *base, char *out, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sft.json", base);
    json_t *j = json_load_file(path, 0, NULL);
    json_t *t = json_object_get(json_object_get(j, "options"), "task");
    bool ok = json_is_string(t) && strlen(json_string_value(t)) < cap;
    if (ok)
        strcpy(out, json_string_value(t));
    json_decref(j);
    return ok;
}

int main(int argc, char **argv)
{
    blas_threads_park(); /* OpenBLAS starts them again at the first GEMM */
    if (argc < 2)
        return usage_error("%s", "missing command: sft or grpo");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return print_usage();
    if (strcmp(argv[1], "--version") == 0) {
        printf("grpo-train %s\n", SS_VERSION);
        return 0;
    }
    const char *mode = argv[1];
    bool sft = strcmp(mode, "sft") == 0;
    if (!sft && strcmp(mode, "grpo") != 0)
        return usage_error("unknown command '%s' (sft or grpo)", mode);

    TrainOptions o;
    train_options_default(&o);
    SsError err = {0};
    if (sft) {
        o.steps = 3000;
        o.eval_every = 100;
        opt_config_default(OPT_ADAMW, &o.opt);
        o.opt.lr = 1e-3;
        o.opt.warmup_steps = 100;
    }
    o.opt.max_grad_norm = 1.0;
    bool task_given = false, lr_given = false, opt_given = false;
    const char *config_path = NULL;
    struct { int opt; long v; } dims[16];
    int ndims = 0;
    bool untied = false, preset_given = false, gemm_given = false;
    long lv;
    double dv;

    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "o:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case O_TASK:
            if (strlen(optarg) >= sizeof o.task_text)
                return usage_error("--task '%s' is too long", optarg);
            strcpy(o.task_text, optarg);
            task_given = true;
            break;
        case O_STEPS:
            if (!parse_long(optarg, 0, 100000000, &lv)) return usage_error("bad --steps '%s'", optarg);
            o.steps = lv;
            break;
        case O_EVAL_EVERY:
            if (!parse_long(optarg, 0, 100000000, &lv)) return usage_error("bad --eval-every '%s'", optarg);
            o.eval_every = lv;
            break;
        case O_EVAL_SIZE:
            if (!parse_long(optarg, 0, 1000000, &lv)) return usage_error("bad --eval-size '%s'", optarg);
            o.eval_size = (int)lv;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("bad --seed '%s'", optarg);
            o.seed = s;
            break;
        }
        case O_THREADS:
            if (!parse_long(optarg, 1, 1024, &lv)) return usage_error("bad --threads '%s'", optarg);
            o.threads = (int)lv;
            break;
        case O_QUIET: o.quiet = true; break;
        case O_DEVICE:
            if (strcmp(optarg, "cpu") == 0) o.device = TRAIN_DEVICE_CPU;
            else if (strcmp(optarg, "cuda") == 0) o.device = TRAIN_DEVICE_CUDA;
            else return usage_error("unknown --device '%s' (cpu, cuda)", optarg);
            break;
        case O_GEMM:
            if (strcmp(optarg, "f32") == 0) o.gemm = TM_GEMM_F32;
            else if (strcmp(optarg, "bf16") == 0) o.gemm = TM_GEMM_BF16;
            else return usage_error("unknown --gemm '%s' (f32, bf16)", optarg);
            gemm_given = true;
            break;
        case O_OPTIMIZER: {
            OptKind k;
            if (opt_kind_parse(optarg, &k) != 0)
                return usage_error("unknown --optimizer '%s' (sgd, adamw)", optarg);
            double keep_clip = o.opt.max_grad_norm;
            long keep_warm = o.opt.warmup_steps;
            opt_config_default(k, &o.opt);
            o.opt.max_grad_norm = keep_clip;
            o.opt.warmup_steps = keep_warm;
            opt_given = true;
            break;
        }
        case O_LR:
            if (!parse_double(optarg, 0, 1e6, &dv)) return usage_error("bad --lr '%s'", optarg);
            o.opt.lr = dv;
            lr_given = true;
            break;
        case O_MOMENTUM:
            if (!parse_double(optarg, 0, 1, &dv) || dv >= 1) return usage_error("bad --momentum '%s'", optarg);
            o.opt.momentum = dv;
            break;
        case O_BETA1:
            if (!parse_double(optarg, 0, 1, &dv) || dv >= 1) return usage_error("bad --beta1 '%s'", optarg);
            o.opt.beta1 = dv;
            break;
        case O_BETA2:
            if (!parse_double(optarg, 0, 1, &dv) || dv >= 1) return usage_error("bad --beta2 '%s'", optarg);
            o.opt.beta2 = dv;
            break;
        case O_ADAM_EPS:
            if (!parse_double(optarg, 0, 1, &dv)) return usage_error("bad --adam-eps '%s'", optarg);
            o.opt.eps = dv;
            break;
        case O_WD:
            if (!parse_double(optarg, 0, 1e3, &dv)) return usage_error("bad --weight-decay '%s'", optarg);
            o.opt.weight_decay = dv;
            break;
        case O_WARMUP:
            if (!parse_long(optarg, 0, 100000000, &lv)) return usage_error("bad --warmup-steps '%s'", optarg);
            o.opt.warmup_steps = lv;
            break;
        case O_MAX_GRAD_NORM:
            if (!parse_double(optarg, 0, 1e30, &dv)) return usage_error("bad --max-grad-norm '%s'", optarg);
            o.opt.max_grad_norm = dv;
            break;
        case O_PRESET:
            if (train_model_preset(optarg, &o.model, &err) != 0)
                return usage_error("%s", err.msg);
            preset_given = true;
            break;
        case O_CONFIG: config_path = optarg; break;
        case O_LAYERS: case O_HIDDEN: case O_INTER: case O_HEADS: case O_KV: case O_HEAD_DIM:
        case O_MAX_POS:
            if (!parse_long(optarg, 1, 1 << 20, &lv) || ndims == 16)
                return usage_error("bad model size '%s'", optarg);
            dims[ndims].opt = c;
            dims[ndims++].v = lv;
            break;
        case O_UNTIED: untied = true; break;
        case O_BATCH:
            if (!parse_long(optarg, 1, 65536, &lv)) return usage_error("bad --batch '%s'", optarg);
            o.batch = (int)lv;
            break;
        case O_TARGET_ACC:
            if (!parse_double(optarg, 0, 1, &dv)) return usage_error("bad --target-acc '%s'", optarg);
            o.target_acc = dv;
            break;
        case O_INIT: o.init = optarg; break;
        case O_PROMPTS:
            if (!parse_long(optarg, 1, 65536, &lv)) return usage_error("bad --prompts '%s'", optarg);
            o.prompts = (int)lv;
            break;
        case O_GROUP:
            if (!parse_long(optarg, 2, 65536, &lv)) return usage_error("bad --group '%s' (at least 2)", optarg);
            o.group = (int)lv;
            break;
        case O_MAX_NEW:
            if (!parse_long(optarg, 1, 4096, &lv)) return usage_error("bad --max-new '%s'", optarg);
            o.max_new = (int)lv;
            break;
        case O_TEMP:
            if (!parse_double(optarg, 0, 100, &dv)) return usage_error("bad --temperature '%s'", optarg);
            o.temperature = (float)dv;
            break;
        case O_ADV:
            if (strcmp(optarg, "grpo") == 0) o.adv_mode = GRPO_ADV_STD;
            else if (strcmp(optarg, "drgrpo") == 0) o.adv_mode = GRPO_ADV_NO_STD;
            else return usage_error("unknown --advantage '%s' (grpo, drgrpo)", optarg);
            break;
        case O_CLIP_LOW:
            if (!parse_double(optarg, 0, 1, &dv)) return usage_error("bad --clip-low '%s'", optarg);
            o.loss.clip_low = (float)dv;
            break;
        case O_CLIP_HIGH:
            if (!parse_double(optarg, 0, 100, &dv)) return usage_error("bad --clip-high '%s'", optarg);
            o.loss.clip_high = (float)dv;
            break;
        case O_KL:
            if (!parse_double(optarg, 0, 1e6, &dv)) return usage_error("bad --kl-coef '%s'", optarg);
            o.loss.beta = (float)dv;
            break;
        case O_AGG:
            if (grpo_agg_parse(optarg, &o.loss.agg) != 0)
                return usage_error("unknown --loss-agg '%s'", optarg);
            break;
        case O_MINI:
            if (!parse_long(optarg, 1, 65536, &lv)) return usage_error("bad --mini-batches '%s'", optarg);
            o.mini_batches = (int)lv;
            break;
        case O_EPOCHS:
            if (!parse_long(optarg, 1, 1000, &lv)) return usage_error("bad --epochs '%s'", optarg);
            o.epochs = (int)lv;
            break;
        case O_SNAP:
            if (!parse_long(optarg, 0, 100000000, &lv)) return usage_error("bad --snapshot-every '%s'", optarg);
            o.snapshot_every = lv;
            break;
        case O_SAVE_MASTER: o.save_master = true; break;
        case O_RESUME: o.resume = true; break;
        case O_LORA_RANK:
            if (!parse_long(optarg, 1, 65536, &lv)) return usage_error("bad --lora-rank '%s'", optarg);
            o.lora_rank = (int)lv;
            break;
        case O_LORA_ALPHA:
            if (!parse_double(optarg, 0, 1e6, &dv) || dv <= 0) return usage_error("bad --lora-alpha '%s'", optarg);
            o.lora_alpha = dv;
            break;
        case O_MASK: o.mask_path = optarg; break;
        case O_HELP: return print_usage();
        case O_VERSION: printf("grpo-train %s\n", SS_VERSION); return 0;
        default: return usage_error("%s", "bad option");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.out)
        return usage_error("%s", "missing -o OUT");
    if (sft && (o.resume || o.lora_rank || o.lora_alpha > 0 || o.mask_path))
        return usage_error("%s", "--resume, --lora-rank, --lora-alpha and --mask are grpo "
                           "options");
    if (sft && o.init && (config_path || ndims || untied || preset_given))
        return usage_error("%s", "sft --init takes the model from the folder; --preset, --config "
                           "and the size options do not apply");
    if (o.lora_alpha > 0 && o.lora_rank == 0)
        return usage_error("%s", "--lora-alpha needs --lora-rank");
    if (o.lora_rank > 0 && o.mask_path)
        return usage_error("%s", "--mask restricts full-parameter training; it cannot be combined "
                           "with --lora-rank");
    if (o.device == TRAIN_DEVICE_CPU && o.gemm == TM_GEMM_BF16)
        return usage_error("%s", "--gemm bf16 needs --device cuda (the CPU model's GEMMs are "
                           "float32)");
    if (o.device == TRAIN_DEVICE_CUDA && !gemm_given)
        o.gemm = TM_GEMM_BF16;
    if (!sft && (config_path || ndims || untied))
        return usage_error("%s", "model options are sft options (grpo takes the model from --init)");
    if (!sft && opt_given && !lr_given && o.opt.kind == OPT_ADAMW)
        o.opt.lr = 1e-5;

    if (!task_given) {
        if (!sft && o.init && base_task(o.init, o.task_text, sizeof o.task_text))
            ;
        else if (!sft)
            return usage_error("%s", "--task is required when BASE has no sft.json");
        else
            strcpy(o.task_text, "add:3");
    }
    if (task_spec_parse(o.task_text, &o.task, &err) != 0)
        return usage_error("--task: %s", err.msg);

    if (sft) {
        if (config_path && model_config_read(config_path, &o.model, &err) != 0) {
            fprintf(stderr, "grpo-train: %s\n", err.msg);
            return ss_exit_status(err.code);
        }
        for (int i = 0; i < ndims; i++) {
            int v = (int)dims[i].v;
            switch (dims[i].opt) {
            case O_LAYERS: o.model.num_hidden_layers = v; break;
            case O_HIDDEN: o.model.hidden_size = v; break;
            case O_INTER: o.model.intermediate_size = v; break;
            case O_HEADS: o.model.num_attention_heads = v; break;
            case O_KV: o.model.num_key_value_heads = v; break;
            case O_HEAD_DIM: o.model.head_dim = v; break;
            case O_MAX_POS: o.model.max_position_embeddings = v; break;
            }
        }
        if (untied)
            o.model.tie_word_embeddings = false;
    }

    int rc = sft ? train_sft(&o, &err) : train_grpo(&o, &err);
    if (rc != 0) {
        fprintf(stderr, "grpo-train %s: %s\n", mode, err.msg);
        return ss_exit_status(rc);
    }
    return 0;
}
