/* ckpt-synth: generates realistic Qwen3-like base checkpoints (init) and simulated RLVR children
 * of any checkpoint (update). A thin main: parses options, calls train/synth.h, prints errors. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>

#include "train/synth.h"

static const char usage_text[] =
"usage: ckpt-synth init -o OUT [options]\n"
"       ckpt-synth update BASE -o OUT --optimizer sgd|adamw [options]\n"
"       ckpt-synth --help | --version\n"
"\n"
"Writes Qwen3-like safetensors checkpoints with Hugging Face names and shapes, and children\n"
"that look like RLVR training changed them (see docs/ckpt-synth.md).\n"
"\n"
"OUT: a path ending in .safetensors is written as one file; anything else is a folder\n"
"(created if missing) holding model.safetensors, or with --shard-size the shards\n"
"model-0000K-of-0000N.safetensors and model.safetensors.index.json, plus config.json.\n"
"\n"
"init options:\n"
"  --preset NAME        tiny|qwen3-0.6b|qwen3-1.7b|qwen3-4b|qwen3-8b (default qwen3-0.6b)\n"
"  --layers N --hidden H --intermediate I --heads Q --kv-heads K --head-dim D --vocab V\n"
"                       override one dimension of the preset\n"
"  --tied | --untied    lm_head shares the embedding (no lm_head.weight) or not\n"
"  --target-bytes SIZE  pick the layer count of the preset shape whose checkpoint size comes\n"
"                       nearest to SIZE (ignores --layers)\n"
"  --dtype bf16|f16|f32 stored dtype (default bf16)\n"
"  Values: projections and embeddings ~ N(0, 0.02^2), norm gains ~ 1 + N(0, 0.02^2).\n"
"\n"
"update options:\n"
"  BASE                 any checkpoint: a .safetensors file, an HF folder (index + shards) or\n"
"                       a folder with model.safetensors; the child has its tensors and dtypes\n"
"  --optimizer sgd|adamw  SGD-like (heavy-tailed tiny gradients: on bf16, sparsity from rounding\n"
"                       near 99.99%) or AdamW-like (sign-like steps of ~lr: sparsity near 91%)\n"
"  --lr X               learning rate (default 0.1 for sgd, 1e-6 for adamw)\n"
"  --steps N            optimizer steps (default 40)\n"
"  --stripes            concentrate the update on a few attention heads per layer: rows of\n"
"                       q/k/v_proj and columns of o_proj\n"
"\n"
"common options:\n"
"  -o, --output OUT     where to write (required)\n"
"  --seed S             64-bit seed (default 0); same seed and options give identical bytes,\n"
"                       whatever --threads is\n"
"  --shard-size SIZE    cut the folder output into HF shards of at most SIZE bytes each\n"
"  --order hf|shuffled  hf (default): shards cut in module order, each file sorted by name;\n"
"                       shuffled: a seeded permutation of the tensors\n"
"  --threads N          worker threads (default: all cores)\n"
"\n"
"SIZE: a number with an optional suffix K, M, G, T (powers of 1024) or KB, MB, GB, TB (powers\n"
"of 1000, like Hugging Face's max_shard_size).\n"
"\n"
"exit status: 0 ok, 1 usage, 2 bad input, 4 cannot write\n";

enum {
    OPT_PRESET = 256, OPT_LAYERS, OPT_HIDDEN, OPT_INTER, OPT_HEADS, OPT_KV, OPT_HEADDIM,
    OPT_VOCAB, OPT_TIED, OPT_UNTIED, OPT_TARGET, OPT_DTYPE, OPT_SEED, OPT_SHARD, OPT_ORDER,
    OPT_THREADS, OPT_OPTIMIZER, OPT_LR, OPT_STEPS, OPT_STRIPES, OPT_HELP, OPT_VERSION
};

static const struct option long_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"preset", required_argument, NULL, OPT_PRESET},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"intermediate", required_argument, NULL, OPT_INTER},
    {"heads", required_argument, NULL, OPT_HEADS},
    {"kv-heads", required_argument, NULL, OPT_KV},
    {"head-dim", required_argument, NULL, OPT_HEADDIM},
    {"vocab", required_argument, NULL, OPT_VOCAB},
    {"tied", no_argument, NULL, OPT_TIED},
    {"untied", no_argument, NULL, OPT_UNTIED},
    {"target-bytes", required_argument, NULL, OPT_TARGET},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"shard-size", required_argument, NULL, OPT_SHARD},
    {"order", required_argument, NULL, OPT_ORDER},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"stripes", no_argument, NULL, OPT_STRIPES},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int fail(int code, const char *msg)
{
    fprintf(stderr, "ckpt-synth: %s\n", msg);
    if (code == SS_EUSAGE)
        fprintf(stderr, "Try 'ckpt-synth --help'.\n");
    return ss_exit_status(code);
}

/* Parses an unsigned decimal in [lo, hi]; returns false when malformed or out of range. */
static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

typedef struct Args {
    bool is_update;
    const char *base;
    const char *preset;
    /* layers, hidden, intermediate, heads, kv_heads, head_dim, vocab; 0: the preset's */
    uint64_t dims[7];
    int tied;         /* -1 preset, 0 untied, 1 tied */
    const char *target, *dtype, *shard, *order, *optimizer;
    uint64_t seed, threads, steps;
    double lr;
    bool stripes;
    const char *out;
} Args;

static int args_parse(int argc, char **argv, bool is_update, Args *a, SsError *err)
{
    memset(a, 0, sizeof *a);
    a->is_update = is_update;
    a->tied = -1;
    optind = 2; /* argv[1] is the command */
    int c;
    while ((c = getopt_long(argc, argv, ":o:", long_opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 'o': a->out = optarg; break;
        case OPT_PRESET: a->preset = optarg; break;
        case OPT_LAYERS: case OPT_HIDDEN: case OPT_INTER: case OPT_HEADS: case OPT_KV:
        case OPT_HEADDIM: case OPT_VOCAB:
            if (!parse_u64(optarg, 1, UINT32_MAX, &v))
                return ss_err(err, SS_EUSAGE, "--%s needs a positive integer, got '%s'",
                              long_opts[c - OPT_PRESET + 1].name, optarg);
            a->dims[c - OPT_LAYERS] = v;
            break;
        case OPT_TIED: a->tied = 1; break;
        case OPT_UNTIED: a->tied = 0; break;
        case OPT_TARGET: a->target = optarg; break;
        case OPT_DTYPE: a->dtype = optarg; break;
        case OPT_SEED:
            if (!parse_u64(optarg, 0, UINT64_MAX, &a->seed))
                return ss_err(err, SS_EUSAGE, "--seed needs an unsigned integer, got '%s'", optarg);
            break;
        case OPT_SHARD: a->shard = optarg; break;
        case OPT_ORDER: a->order = optarg; break;
        case OPT_THREADS:
            if (!parse_u64(optarg, 1, 4096, &a->threads))
                return ss_err(err, SS_EUSAGE, "--threads needs an integer in [1, 4096], got '%s'",
                              optarg);
            break;
        case OPT_OPTIMIZER: a->optimizer = optarg; break;
        case OPT_LR: {
            char *end = NULL;
            errno = 0;
            a->lr = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(a->lr > 0) || !isfinite(a->lr))
                return ss_err(err, SS_EUSAGE, "--lr needs a positive number, got '%s'", optarg);
            break;
        }
        case OPT_STEPS:
            if (!parse_u64(optarg, 1, 100000000, &a->steps))
                return ss_err(err, SS_EUSAGE, "--steps needs an integer in [1, 1e8], got '%s'",
                              optarg);
            break;
        case OPT_STRIPES: a->stripes = true; break;
        case ':':
            return ss_err(err, SS_EUSAGE, "option '%s' needs a value", argv[optind - 1]);
        default:
            return ss_err(err, SS_EUSAGE, "unknown option '%s'", argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    if (a->is_update) {
        if (nargs != 1)
            return ss_err(err, SS_EUSAGE, "update needs exactly one BASE checkpoint");
        a->base = argv[optind];
    } else if (nargs != 0) {
        return ss_err(err, SS_EUSAGE, "unexpected argument '%s'", argv[optind]);
    }
    if (!a->out)
        return ss_err(err, SS_EUSAGE, "-o OUT is required");
    return SS_OK;
}

static int write_options(const Args *a, SynthWriteOptions *w, SsError *err)
{
    memset(w, 0, sizeof *w);
    w->out = a->out;
    w->threads = (int)a->threads;
    w->order_seed = a->seed;
    if (a->shard) {
        int rc = synth_size_parse(a->shard, &w->shard_size, err);
        if (rc)
            return ss_err_prefix(err, "--shard-size");
    }
    if (!a->order || strcmp(a->order, "hf") == 0)
        w->order = SYNTH_ORDER_HF;
    else if (strcmp(a->order, "shuffled") == 0)
        w->order = SYNTH_ORDER_SHUFFLED;
    else
        return ss_err(err, SS_EUSAGE, "--order must be hf or shuffled, got '%s'", a->order);
    return SS_OK;
}

static int run_init(const Args *a, SsError *err)
{
    if (a->optimizer || a->lr > 0 || a->steps || a->stripes)
        return ss_err(err, SS_EUSAGE, "--optimizer, --lr, --steps and --stripes belong to update");
    SynthInitOptions o;
    memset(&o, 0, sizeof o);
    int rc = synth_preset_find(a->preset ? a->preset : "qwen3-0.6b", &o.shape, err);
    if (rc)
        return rc;
    uint32_t *fields[7] = {&o.shape.layers, &o.shape.hidden, &o.shape.intermediate,
                           &o.shape.heads, &o.shape.kv_heads, &o.shape.head_dim, &o.shape.vocab};
    for (int i = 0; i < 7; i++)
        if (a->dims[i])
            *fields[i] = (uint32_t)a->dims[i];
    if (a->tied >= 0)
        o.shape.tied = a->tied == 1;
    const char *dtype = a->dtype ? a->dtype : "bf16";
    if (strcmp(dtype, "bf16") == 0)
        o.dtype = DT_BF16;
    else if (strcmp(dtype, "f16") == 0)
        o.dtype = DT_F16;
    else if (strcmp(dtype, "f32") == 0)
        o.dtype = DT_F32;
    else
        return ss_err(err, SS_EUSAGE, "--dtype must be bf16, f16 or f32, got '%s'", dtype);
    if ((rc = synth_shape_check(&o.shape, o.dtype, err)) != 0)
        return rc;
    if (a->target) {
        uint64_t target;
        if ((rc = synth_size_parse(a->target, &target, err)) != 0)
            return ss_err_prefix(err, "--target-bytes");
        if ((rc = synth_shape_fit_layers(&o.shape, o.dtype, target, err)) != 0)
            return rc;
    }
    o.seed = a->seed;
    if ((rc = write_options(a, &o.write, err)) != 0)
        return rc;
    return synth_init_run(&o, err);
}

static int run_update(const Args *a, SsError *err)
{
    for (int i = 0; i < 7; i++)
        if (a->dims[i])
            return ss_err(err, SS_EUSAGE, "shape options belong to init");
    if (a->target || a->tied >= 0 || a->dtype || a->preset)
        return ss_err(err, SS_EUSAGE, "--preset, --target-bytes, --tied/--untied and --dtype "
                      "belong to init (update keeps the base's shapes and dtypes)");
    SynthUpdateOptions o;
    memset(&o, 0, sizeof o);
    if (!a->optimizer)
        return ss_err(err, SS_EUSAGE, "update needs --optimizer sgd|adamw");
    if (strcmp(a->optimizer, "sgd") == 0)
        o.optimizer = SYNTH_SGD;
    else if (strcmp(a->optimizer, "adamw") == 0)
        o.optimizer = SYNTH_ADAMW;
    else
        return ss_err(err, SS_EUSAGE, "--optimizer must be sgd or adamw, got '%s'", a->optimizer);
    o.base = a->base;
    o.lr = a->lr;
    o.steps = (uint32_t)a->steps;
    o.seed = a->seed;
    o.stripes = a->stripes;
    int rc = write_options(a, &o.write, err);
    if (rc)
        return rc;
    return synth_update_run(&o, err);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fail(SS_EUSAGE, "missing command (init or update)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ckpt-synth %s\n", SS_VERSION);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
    bool update = strcmp(argv[1], "update") == 0;
    if (!update && strcmp(argv[1], "init") != 0)
        return fail(SS_EUSAGE, "unknown command (expected init or update)");
    Args a;
    SsError err = {0};
    opterr = 0;
    int rc = args_parse(argc, argv, update, &a, &err);
    if (rc == SS_OK)
        rc = update ? run_update(&a, &err) : run_init(&a, &err);
    if (rc != SS_OK)
        return fail(rc, err.msg);
    return 0;
}
