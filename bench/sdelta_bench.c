/* sdelta-bench: measures one parent/child pair for bench/sdelta_bench.sh.
 *
 * Prints one line of key=value fields: element and change counts, the entropy lower bound
 * (n * H2(changed/n) + the empirical entropy of the changed elements' XOR values, in bytes), the
 * delta's size, and single-thread encode (child bytes / s) and decode (output bytes / s, every
 * tensor materialized with its parent and child checks) speeds, best of --reps runs. With
 * --baselines DIR it also writes DIR/xor.bin (the XOR of all tensors) and DIR/xor-planes.bin
 * (the XOR split into byte planes per tensor) for the zstd baselines.
 * --minor 1 writes a format 1.1 file (no escape mode); --force-mode M forces chunk mode M where
 * it applies (testing).
 * Usage: sdelta-bench PARENT CHILD OUT.sdelta [--baselines DIR] [--reps N] [--minor 1]
 *                     [--force-mode M] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/safetensors.h"
#include "formats/sdelta/sdelta.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* CPU time: robust on a shared machine */
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *pp = NULL, *cp = NULL, *op = NULL, *bdir = NULL;
    int reps = 3, minor = 0, force_mode = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--baselines") == 0 && i + 1 < argc)
            bdir = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--minor") == 0 && i + 1 < argc)
            minor = atoi(argv[++i]);
        else if (strcmp(argv[i], "--force-mode") == 0 && i + 1 < argc)
            force_mode = atoi(argv[++i]);
        else if (!pp)
            pp = argv[i];
        else if (!cp)
            cp = argv[i];
        else if (!op)
            op = argv[i];
    }
    if (!pp || !cp || !op || reps < 1) {
        fprintf(stderr, "usage: sdelta-bench PARENT CHILD OUT.sdelta [--baselines DIR] [--reps N]\n");
        return 1;
    }
    SsError e = {0};
    StCheckpoint *par, *chi;
    if (st_open(pp, &par, &e) || st_open(cp, &chi, &e)) {
        fprintf(stderr, "sdelta-bench: %s\n", e.msg);
        return 2;
    }
    /* entropy bound over tensors present in both with the same dtype and size */
    uint64_t n = 0, k = 0, raw = 0;
    uint64_t *hist16 = calloc(65536, sizeof *hist16);
    uint64_t *wide = NULL;
    size_t nwide = 0, capwide = 0;
    FILE *fx = NULL, *fp = NULL;
    if (bdir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/xor.bin", bdir);
        fx = fopen(path, "wb");
        snprintf(path, sizeof path, "%s/xor-planes.bin", bdir);
        fp = fopen(path, "wb");
        if (!fx || !fp) {
            perror(bdir);
            return 4;
        }
    }
    SdeltaTensorSrc *src = calloc(chi->ntensors, sizeof *src);
    for (size_t i = 0; i < chi->ntensors; i++) {
        const StTensor *c = chi->tensors[i], *p = st_find(par, c->name);
        src[i] = (SdeltaTensorSrc){c->name, c->dtype, c->ndim, c->shape, c->data};
        raw += c->nbytes;
        if (!p || p->dtype != c->dtype || p->nbytes != c->nbytes)
            continue;
        size_t w = dtype_size(c->dtype);
        const uint8_t *a = p->data, *b = c->data;
        uint8_t *x = bdir ? malloc(c->nbytes + 1) : NULL, *pl = bdir ? malloc(c->nbytes + 1) : NULL;
        for (uint64_t j = 0; j < c->numel; j++) {
            uint64_t va = 0, vb = 0;
            memcpy(&va, a + j * w, w);
            memcpy(&vb, b + j * w, w);
            uint64_t v = va ^ vb;
            n++;
            if (v) {
                k++;
                if (w <= 2) {
                    hist16[v]++;
                } else {
                    if (nwide == capwide) {
                        capwide = capwide ? capwide * 2 : 1 << 20;
                        wide = realloc(wide, capwide * sizeof *wide);
                    }
                    wide[nwide++] = v;
                }
            }
            if (x) {
                memcpy(x + j * w, &v, w);
                for (size_t q = 0; q < w; q++)
                    pl[q * c->numel + j] = (uint8_t)(v >> (8 * q));
            }
        }
        if (x) {
            fwrite(x, 1, c->nbytes, fx);
            fwrite(pl, 1, c->nbytes, fp);
        }
        free(x);
        free(pl);
    }
    if (fx)
        fclose(fx);
    if (fp)
        fclose(fp);
    double bits = 0;
    if (k && k < n) {
        double q = (double)k / (double)n;
        bits = (double)n * -(q * log2(q) + (1 - q) * log2(1 - q));
    }
    for (size_t v = 0; v < 65536; v++)
        if (hist16[v])
            bits -= (double)hist16[v] * log2((double)hist16[v] / (double)k);
    qsort(wide, nwide, sizeof *wide, cmp_u64);
    for (size_t i = 0; i < nwide;) {
        size_t j = i;
        while (j < nwide && wide[j] == wide[i])
            j++;
        bits -= (double)(j - i) * log2((double)(j - i) / (double)k);
        i = j;
    }
    double bound = bits / 8.0;

    /* encode, single thread, best of reps */
    SdeltaWriteOptions o;
    sdelta_write_options_init(&o);
    o.threads = 1;
    o.format_minor = minor;
    o.force_mode = force_mode;
    double tenc = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (sdelta_write(op, par, src, chi->ntensors, &o, &e)) {
            fprintf(stderr, "sdelta-bench: %s\n", e.msg);
            return 4;
        }
        double t = now() - t0;
        if (t < tenc)
            tenc = t;
    }
    /* decode, single thread, best of reps */
    SdeltaFile *f;
    if (sdelta_open(op, &f, &e)) {
        fprintf(stderr, "sdelta-bench: %s\n", e.msg);
        return 2;
    }
    uint64_t maxb = 1, out = 0;
    for (size_t i = 0; i < f->ntensors; i++) {
        if (f->tensors[i].nbytes > maxb)
            maxb = f->tensors[i].nbytes;
        out += f->tensors[i].nbytes;
    }
    uint8_t *buf = malloc(maxb);
    memset(buf, 0, maxb);
    double tdec = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < f->ntensors; i++) {
            const StTensor *p = st_find(par, f->tensors[i].name);
            if (sdelta_decode_tensor(f, i, f->tensors[i].has_parent ? p->data : NULL, buf, 1, &e)) {
                fprintf(stderr, "sdelta-bench: %s\n", e.msg);
                return 2;
            }
        }
        double t = now() - t0;
        if (t < tdec)
            tdec = t;
    }
    printf("elements=%llu changed=%llu raw_bytes=%llu bound_bytes=%.0f delta_bytes=%llu "
           "header_bytes=%llu encode_MBps=%.0f decode_MBps=%.0f\n",
           (unsigned long long)n, (unsigned long long)k, (unsigned long long)raw, bound,
           (unsigned long long)f->file_size, (unsigned long long)f->header_bytes,
           (double)raw / tenc / 1e6, (double)out / tdec / 1e6);
    sdelta_close(f);
    free(buf);
    free(src);
    free(hist16);
    free(wide);
    st_close(par);
    st_close(chi);
    return 0;
}
