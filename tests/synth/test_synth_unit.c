/* Unit tests of ckpt-synth's library (train/synth.h): presets against the released Qwen3
 * config.json values, SIZE parsing, layer fitting, tensor kinds, the float -> bf16/f16 rounding,
 * and the counter-based RNG and its normal deviates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/dtype_convert.h"
#include "train/synth.h"
#include "tests/check.h"


static int shape_eq(const SynthShape *a, const SynthShape *b)
{
    return a->layers == b->layers && a->hidden == b->hidden &&
           a->intermediate == b->intermediate && a->heads == b->heads &&
           a->kv_heads == b->kv_heads && a->head_dim == b->head_dim && a->vocab == b->vocab &&
           a->tied == b->tied;
}

static void test_presets(void)
{
    SynthShape s;
    SsError err;
    /* layers, hidden, intermediate, heads, kv_heads, head_dim, vocab, tied */
    const struct { const char *name; SynthShape want; } cases[] = {
        {"qwen3-0.6b", {28, 1024, 3072, 16, 8, 128, 151936, true}},
        {"qwen3-1.7b", {28, 2048, 6144, 16, 8, 128, 151936, true}},
        {"qwen3-4b", {36, 2560, 9728, 32, 8, 128, 151936, true}},
        {"qwen3-8b", {36, 4096, 12288, 32, 8, 128, 151936, false}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(synth_preset_find(cases[i].name, &s, &err) == 0);
        CHECK(shape_eq(&s, &cases[i].want));
        CHECK(synth_shape_check(&s, DT_BF16, &err) == 0);
    }
    CHECK(synth_preset_find("tiny", &s, &err) == 0);
    CHECK(synth_preset_find("qwen3-70b", &s, &err) == SS_EUSAGE);

    /* Qwen3-0.6B has 596,049,920 parameters with tied embeddings (0.44B without them). */
    uint64_t bytes;
    CHECK(synth_preset_find("qwen3-0.6b", &s, &err) == 0);
    CHECK(synth_shape_bytes(&s, DT_BF16, &bytes, &err) == 0 && bytes == 2ull * 596049920ull);

    SynthShape bad = s;
    bad.kv_heads = 3;
    CHECK(synth_shape_check(&bad, DT_BF16, &err) == SS_EUSAGE);
    bad = s;
    bad.hidden = 0;
    CHECK(synth_shape_check(&bad, DT_BF16, &err) == SS_EUSAGE);
}

static void test_layout(void)
{
    SynthShape s;
    SsError err;
    SynthLayout l;
    CHECK(synth_preset_find("tiny", &s, &err) == 0);
    s.tied = false;
    CHECK(synth_layout_build(&s, DT_F16, &l, &err) == 0);
    CHECK(l.ntensors == 2 * 11 + 3);
    CHECK(strcmp(l.tensors[0].name, "model.embed_tokens.weight") == 0);
    CHECK(strcmp(l.tensors[l.ntensors - 1].name, "lm_head.weight") == 0);
    uint64_t sum = 0;
    for (size_t i = 0; i < l.ntensors; i++)
        sum += l.tensors[i].nbytes;
    uint64_t bytes;
    CHECK(synth_shape_bytes(&s, DT_F16, &bytes, &err) == 0 && bytes == sum);
    synth_layout_free(&l);
}

static void test_fit(void)
{
    SynthShape s;
    SsError err;
    uint64_t bytes, one;
    CHECK(synth_preset_find("qwen3-0.6b", &s, &err) == 0);
    s.layers = 1;
    CHECK(synth_shape_bytes(&s, DT_BF16, &one, &err) == 0);
    s.layers = 2;
    CHECK(synth_shape_bytes(&s, DT_BF16, &bytes, &err) == 0);
    uint64_t per_layer = bytes - one;
    CHECK(synth_shape_fit_layers(&s, DT_BF16, 2ull << 30, &err) == 0);
    CHECK(synth_shape_bytes(&s, DT_BF16, &bytes, &err) == 0);
    uint64_t target = 2ull << 30;
    CHECK((bytes > target ? bytes - target : target - bytes) <= per_layer / 2);
    CHECK(synth_shape_fit_layers(&s, DT_BF16, 1000, &err) == 0 && s.layers == 1);
}

static void test_sizes(void)
{
    SsError err;
    uint64_t v;
    CHECK(synth_size_parse("2G", &v, &err) == 0 && v == 2ull << 30);
    CHECK(synth_size_parse("2GiB", &v, &err) == 0 && v == 2ull << 30);
    CHECK(synth_size_parse("5GB", &v, &err) == 0 && v == 5000000000ull);
    CHECK(synth_size_parse("64k", &v, &err) == 0 && v == 65536);
    CHECK(synth_size_parse("123", &v, &err) == 0 && v == 123);
    CHECK(synth_size_parse("0", &v, &err) == SS_EUSAGE);
    CHECK(synth_size_parse("-1G", &v, &err) == SS_EUSAGE);
    CHECK(synth_size_parse("2X", &v, &err) == SS_EUSAGE);
    CHECK(synth_size_parse("", &v, &err) == SS_EUSAGE);
    CHECK(synth_size_parse("99999999999999999999", &v, &err) == SS_EUSAGE);
    CHECK(synth_size_parse("20000000000T", &v, &err) == SS_EUSAGE);
}

static void test_kinds(void)
{
    int layer;
    CHECK(synth_kind_of("model.layers.12.self_attn.q_proj.weight", &layer) == SYNTH_Q &&
          layer == 12);
    CHECK(synth_kind_of("model.layers.0.self_attn.o_proj.weight", &layer) == SYNTH_O);
    CHECK(synth_kind_of("model.layers.3.mlp.down_proj.weight", &layer) == SYNTH_DOWN);
    CHECK(synth_kind_of("model.layers.3.self_attn.k_norm.weight", &layer) == SYNTH_NORM &&
          layer == 3);
    CHECK(synth_kind_of("model.norm.weight", &layer) == SYNTH_NORM && layer == -1);
    CHECK(synth_kind_of("model.embed_tokens.weight", &layer) == SYNTH_EMBED);
    CHECK(synth_kind_of("lm_head.weight", &layer) == SYNTH_LM_HEAD);
    CHECK(synth_kind_of("model.layers.x.self_attn.q_proj.weight", &layer) == SYNTH_OTHER);
}

static void test_rounding(void)
{
    /* Every finite half survives decode -> float -> encode; Inf too; NaN stays NaN. */
    for (uint32_t h = 0; h < 65536; h++) {
        double d = ss_f16_to_double((uint16_t)h);
        uint16_t back = synth_f32_to_f16((float)d);
        if (isnan(d))
            CHECK((back & 0x7C00) == 0x7C00 && (back & 0x3FF) != 0);
        else if (back != h)
            CHECK(back == h);
    }
    /* Ties go to even: 1 + 2^-11 (halfway between 1 and the next half) rounds to 1. */
    CHECK(synth_f32_to_f16(1.0f + 0x1.0p-11f) == 0x3C00);
    CHECK(synth_f32_to_f16(1.0f + 3 * 0x1.0p-11f) == 0x3C02);
    CHECK(synth_f32_to_f16(65520.0f) == 0x7C00);      /* rounds up to Inf */
    CHECK(synth_f32_to_f16(65519.0f) == 0x7BFF);
    CHECK(synth_f32_to_f16(0x1.0p-25f) == 0x0000);    /* tie below the smallest subnormal */
    CHECK(synth_f32_to_f16(0x1.8p-25f) == 0x0001);
    CHECK(synth_f32_to_f16(-0.0f) == 0x8000);
    /* bf16: ties to even, carries into the exponent, NaN kept. */
    CHECK(synth_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(synth_f32_to_bf16(1.0f + 0x1.0p-8f) == 0x3F80);       /* tie -> even */
    CHECK(synth_f32_to_bf16(1.0f + 3 * 0x1.0p-8f) == 0x3F82);   /* tie -> even (up) */
    CHECK(synth_f32_to_bf16(1.0f + 0x1.2p-8f) == 0x3F81);       /* above the tie */
    CHECK(synth_f32_to_bf16(0x1.fffffep0f) == 0x4000);          /* carry */
    CHECK(synth_f32_to_bf16(__builtin_inff()) == 0x7F80);
    CHECK((synth_f32_to_bf16(__builtin_nanf("")) & 0x7FFF) > 0x7F80);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = synth_bits_f32(h << 16);
        if (!isnan(f))
            CHECK(synth_f32_to_bf16(f) == h);
    }
}

static void test_rng(void)
{
    /* splitmix64 seeded with 0: the first output is 0xE220A8397B1DCDAF. */
    CHECK(synth_draw(0, 0) == 0xE220A8397B1DCDAFull);
    CHECK(synth_key(1, 2, "a") != synth_key(1, 2, "b"));
    CHECK(synth_key(1, 2, "a") != synth_key(2, 2, "a"));
    CHECK(synth_key(1, 2, "a") == synth_key(1, 2, "a"));
    double s1 = 0, s2 = 0, s4 = 0, umin = 1, umax = 0;
    const int n = 1 << 20;
    for (int i = 0; i < n; i++) {
        double z = synth_normal(synth_draw(42, (uint64_t)i));
        s1 += z;
        s2 += z * z;
        s4 += z * z * z * z;
        double u = synth_uniform(synth_draw(43, (uint64_t)i));
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
    }
    double mean = s1 / n, var = s2 / n - mean * mean, kurt = s4 / n / (var * var);
    CHECK(fabs(mean) < 0.005);
    CHECK(fabs(var - 1.0) < 0.01);
    CHECK(fabs(kurt - 3.0) < 0.1);
    CHECK(umin > 0.0 && umax < 1.0);
    CHECK(synth_uniform(0) > 0.0 && synth_uniform(~0ull) < 1.0);
}

int main(void)
{
    test_presets();
    test_layout();
    test_fit();
    test_sizes();
    test_kinds();
    test_rounding();
    test_rng();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("synth unit: all checks passed\n");
    return 0;
}
