/* Run folders: RUN@base, RUN@latest and RUN@STEP over base-parented snapshots and chains
 * (materialized and caller-held previous steps); spec syntax; files that are not snapshots are
 * ignored; a broken chain, a missing step or a malformed spec is an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/safetensors.h"
#include "formats/sdelta/run.h"
#include "tests/sdelta/sdelta_testutil.h"

#define NT 4

/* states[s][t]: tensor t's bytes at state s (0 = base). */
static uint8_t *states[6][NT];
static TuPair shape_of[NT];

static SdeltaTensorSrc src_at(int s, int t)
{
    SdeltaTensorSrc x = {shape_of[t].name, shape_of[t].dtype, shape_of[t].ndim, shape_of[t].shape,
                         states[s][t]};
    return x;
}

static void check_spec(const char *dir, const char *which, int state, size_t chain)
{
    char *spec;
    if (asprintf(&spec, "%s@%s", dir, which) < 0)
        exit(2);
    RunCheckpoint *rc;
    SsError e = {0};
    int r = run_open(spec, &rc, &e);
    CHECK(r == 0, "open %s: %s", spec, e.msg);
    if (r) {
        free(spec);
        return;
    }
    CHECK(rc->chain_length == chain, "%s: chain %zu, want %zu", spec, rc->chain_length, chain);
    CHECK(rc->ntensors == NT, "%s: %zu tensors", spec, rc->ntensors);
    for (int threads = 1; threads <= 2; threads++) {
        rc->threads = threads;
        for (int t = 0; t < NT; t++) {
            long i = run_find(rc, shape_of[t].name);
            CHECK(i >= 0, "%s: '%s' missing", spec, shape_of[t].name);
            if (i < 0)
                continue;
            CHECK(rc->tensors[i].nbytes == shape_of[t].nbytes, "nbytes");
            uint8_t *buf = malloc(shape_of[t].nbytes + 1);
            r = run_tensor_read(rc, (size_t)i, buf, &e);
            CHECK(r == 0 && memcmp(buf, states[state][t], shape_of[t].nbytes) == 0,
                  "%s: '%s': %s", spec, shape_of[t].name, r ? e.msg : "bytes differ");
            free(buf);
        }
    }
    run_close(rc);
    free(spec);
}

int main(void)
{
    /* run_is_spec */
    CHECK(run_is_spec("run@100") && run_is_spec("run/@base") && run_is_spec("a@b@latest") &&
              run_is_spec("/x/y@0"),
          "valid specs");
    CHECK(!run_is_spec("run") && !run_is_spec("@100") && !run_is_spec("model@2x.safetensors") &&
              !run_is_spec("run@") && !run_is_spec("run@-1") && !run_is_spec("run@1e3") &&
              !run_is_spec(NULL),
          "invalid specs");

    char *dir = tu_tmpdir("run");
    const uint64_t s0[] = {5000}, s1[] = {33, 7}, s2[] = {0}, s3[] = {1};
    tu_pair(&shape_of[0], "a.weight", DT_BF16, 1, s0, 0);
    tu_pair(&shape_of[1], "b.weight", DT_F32, 2, s1, 0);
    tu_pair(&shape_of[2], "empty", DT_F16, 1, s2, 0);
    tu_pair(&shape_of[3], "scalar", DT_I64, 0, s3, 0);
    for (int t = 0; t < NT; t++)
        states[0][t] = shape_of[t].parent;
    for (int s = 1; s < 6; s++)
        for (int t = 0; t < NT; t++) {
            size_t nb = shape_of[t].nbytes, w = dtype_size(shape_of[t].dtype);
            states[s][t] = malloc(nb + 1);
            memcpy(states[s][t], states[s - 1][t], nb);
            for (size_t k = 0; k < nb / w; k += 1 + tu_next() % 50)
                states[s][t][k * w] ^= (uint8_t)(1 + tu_next() % 3);
        }
    /* base */
    StTensorSpec specs[NT];
    const void *datas[NT];
    for (int t = 0; t < NT; t++) {
        specs[t] = (StTensorSpec){shape_of[t].name, shape_of[t].dtype, shape_of[t].ndim,
                                  shape_of[t].shape};
        datas[t] = states[0][t];
    }
    char *base;
    if (asprintf(&base, "%s/%s", dir, RUN_BASE_NAME) < 0)
        exit(2);
    SsError e = {0};
    CHECK(st_write(base, specs, datas, NT, NULL, 0, &e) == 0, "st_write: %s", e.msg);
    check_spec(dir, "latest", 0, 0); /* no snapshots yet: the base */

    /* steps 10 and 20 against the base, 30 chained (materialized), 40 chained (caller-held) */
    SdeltaTensorSrc child[NT], prev[NT];
    StMeta meta[] = {{"optimizer", "sgd"}};
    for (int s = 1; s <= 4; s++) {
        for (int t = 0; t < NT; t++) {
            child[t] = src_at(s, t);
            prev[t] = src_at(s - 1, t);
        }
        RunWriteOptions o = {.chain = s >= 3, .meta = meta, .nmeta = 1, .threads = 2};
        if (s == 4) {
            o.prev = prev;
            o.nprev = NT;
        }
        CHECK(run_write_snapshot(dir, (uint64_t)s * 10, child, NT, &o, &e) == 0, "step %d: %s",
              s * 10, e.msg);
    }
    /* noise a reader must ignore */
    char *junk;
    const char *junk_names[] = {"step-000050.sdelta.tmp.1234", "notes.txt", "step-.sdelta",
                                "step-12x.sdelta"};
    for (int k = 0; k < 4; k++) {
        if (asprintf(&junk, "%s/snapshots/%s", dir, junk_names[k]) < 0)
            exit(2);
        FILE *fj = fopen(junk, "w");
        if (fj) {
            fputs("garbage", fj);
            fclose(fj);
        }
        free(junk);
    }
    check_spec(dir, "base", 0, 0);
    check_spec(dir, "10", 1, 1);
    check_spec(dir, "20", 2, 1);
    check_spec(dir, "30", 3, 2);
    check_spec(dir, "40", 4, 3);
    check_spec(dir, "latest", 4, 3);
    char *slash;
    if (asprintf(&slash, "%s/", dir) < 0)
        exit(2);
    check_spec(slash, "10", 1, 1);
    free(slash);

    uint64_t *steps;
    size_t ns;
    CHECK(run_list_steps(dir, &steps, &ns, &e) == 0 && ns == 4 && steps[0] == 10 && steps[3] == 40,
          "run_list_steps");
    free(steps);

    /* errors */
    char *spec;
    RunCheckpoint *rc;
    if (asprintf(&spec, "%s@15", dir) < 0)
        exit(2);
    CHECK(run_open(spec, &rc, &e) == SS_EINPUT && strstr(e.msg, "no snapshot of step 15"),
          "missing step: %s", e.msg);
    free(spec);
    CHECK(run_open("no-such-run@1", &rc, &e) == SS_EINPUT, "missing folder");
    CHECK(run_open("no-at-sign", &rc, &e) == SS_EUSAGE, "malformed spec");
    /* break the chain: step 30's parent (step 20) disappears */
    char *p20 = run_snapshot_path(dir, 20);
    CHECK(remove(p20) == 0, "remove");
    if (asprintf(&spec, "%s@30", dir) < 0)
        exit(2);
    CHECK(run_open(spec, &rc, &e) == SS_EINPUT && strstr(e.msg, "step-000020.sdelta"),
          "broken chain: %s", e.msg);
    free(spec);
    check_spec(dir, "10", 1, 1); /* base-parented snapshots still open */
    free(p20);

    for (int s = 0; s < 6; s++)
        for (int t = 0; t < NT; t++)
            if (s > 0)
                free(states[s][t]);
    for (int t = 0; t < NT; t++)
        tu_pair_free(&shape_of[t]);
    free(base);
    tu_rmtree(dir);
    free(dir);
    printf("run: %d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
