/* sdelta-gen: makes a child checkpoint near a parent, with a chosen fraction of changed elements,
 * for the .sdelta benchmark (bench/sdelta_bench.sh).
 *
 * Each floating-point element moves as a training step would move it: child = round(parent +
 * lr * g) in the tensor's dtype (BF16, F16 via F32 arithmetic with round-to-nearest-even; F32),
 * g ~ N(0, 1) drawn from a counter-based generator (seed, tensor, element). Whether an element's
 * stored bits change then depends on its magnitude, as with real updates: small weights change
 * first. lr is found by bisection so that the changed fraction over all floating elements is
 * the requested density. Other dtypes are copied.
 * Usage: sdelta-gen PARENT OUT.safetensors --density P [--seed S] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static float gauss(uint64_t seed, uint64_t t, uint64_t i)
{
    uint64_t a = splitmix(seed ^ splitmix(t * 0x100000001B3ull + i));
    uint64_t b = splitmix(a);
    double u = ((double)(a >> 11) + 1.0) / 9007199254740993.0, v = (double)(b >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* New bits of element i of tensor t (dtype BF16 or F32) under step lr. */
static uint64_t moved(const StTensor *t, uint64_t ti, uint64_t i, double lr, uint64_t seed)
{
    float g = gauss(seed, ti, i);
    if (t->dtype == DT_BF16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
        return f32_to_bf16(bf16_to_f32(h) + (float)(lr * g));
    }
    float f;
    memcpy(&f, (const uint8_t *)t->data + 4 * i, 4);
    f += (float)(lr * g);
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t old_bits(const StTensor *t, uint64_t i)
{
    uint64_t x = 0;
    memcpy(&x, (const uint8_t *)t->data + i * dtype_size(t->dtype), dtype_size(t->dtype));
    return x;
}

static bool movable(const StTensor *t) { return t->dtype == DT_BF16 || t->dtype == DT_F32; }

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    double density = -1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--density") == 0 && i + 1 < argc)
            density = atof(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
    }
    if (!in || !out || density < 0 || density > 1) {
        fprintf(stderr, "usage: sdelta-gen PARENT OUT.safetensors --density P [--seed S]\n");
        return 1;
    }
    SsError e = {0};
    StCheckpoint *ck;
    if (st_open(in, &ck, &e)) {
        fprintf(stderr, "sdelta-gen: %s\n", e.msg);
        return ss_exit_status(e.code);
    }
    /* bisection on lr over a sample of elements */
    double lo = 1e-12, hi = 10.0, lr = 0;
    for (int it = 0; it < 50; it++) {
        lr = sqrt(lo * hi);
        uint64_t n = 0, ch = 0;
        for (size_t ti = 0; ti < ck->ntensors; ti++) {
            const StTensor *t = ck->tensors[ti];
            if (!movable(t))
                continue;
            for (uint64_t i = ti % 37; i < t->numel; i += 37) {
                n++;
                ch += moved(t, ti, i, lr, seed) != old_bits(t, i);
            }
        }
        if (n == 0)
            break;
        if ((double)ch / (double)n < density)
            lo = lr;
        else
            hi = lr;
    }
    StTensorSpec *specs = calloc(ck->ntensors, sizeof *specs);
    const void **datas = calloc(ck->ntensors, sizeof *datas);
    uint64_t n = 0, ch = 0;
    for (size_t ti = 0; ti < ck->ntensors; ti++) {
        const StTensor *t = ck->tensors[ti];
        specs[ti] = (StTensorSpec){t->name, t->dtype, t->ndim, t->shape};
        uint8_t *d = malloc(t->nbytes + 1);
        memcpy(d, t->data, t->nbytes);
        if (movable(t) && density > 0) {
            size_t w = dtype_size(t->dtype);
            for (uint64_t i = 0; i < t->numel; i++) {
                uint64_t x = moved(t, ti, i, lr, seed);
                n++;
                ch += x != old_bits(t, i);
                memcpy(d + i * w, &x, w);
            }
        }
        datas[ti] = d;
    }
    int rc = st_write(out, specs, datas, ck->ntensors, NULL, 0, &e);
    if (rc)
        fprintf(stderr, "sdelta-gen: %s\n", e.msg);
    else
        printf("sdelta-gen: %s: lr %.4g, %llu of %llu elements changed (%.5f%%)\n", out, lr,
               (unsigned long long)ch, (unsigned long long)n, n ? 100.0 * (double)ch / (double)n : 0.0);
    for (size_t ti = 0; ti < ck->ntensors; ti++)
        free((void *)datas[ti]);
    free(datas);
    free(specs);
    st_close(ck);
    return rc ? ss_exit_status(rc) : 0;
}
