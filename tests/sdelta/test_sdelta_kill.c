/* Atomic writes: a process writing snapshots into a run folder is SIGKILLed at random moments,
 * many times. Afterwards every file named *.sdelta must decode completely to the exact child
 * (or be absent), leftover temporary files must be ignored by readers, and RUN@latest must
 * open. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "formats/safetensors.h"
#include "formats/sdelta/run.h"
#include "tests/sdelta/sdelta_testutil.h"

#define NT 3

static void writer_loop(const char *dir, TuPair *pairs)
{
    SdeltaTensorSrc child[NT];
    for (int t = 0; t < NT; t++)
        child[t] = tu_src(&pairs[t], true);
    for (uint64_t step = 1;; step = step % 5 + 1) {
        SsError e = {0};
        RunWriteOptions o = {.threads = 1};
        if (run_write_snapshot(dir, step, child, NT, &o, &e) != 0) {
            fprintf(stderr, "writer: %s\n", e.msg);
            _exit(3);
        }
    }
}

static int check_folder(const char *dir, TuPair *pairs, size_t *ntmp)
{
    char *sd;
    if (asprintf(&sd, "%s/snapshots", dir) < 0)
        exit(2);
    DIR *d = opendir(sd);
    int nfiles = 0;
    if (!d) {
        free(sd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (strstr(de->d_name, ".tmp."))
            (*ntmp)++;
        if (l < 7 || strcmp(de->d_name + l - 7, ".sdelta") != 0)
            continue;
        nfiles++;
        char *path;
        if (asprintf(&path, "%s/%s", sd, de->d_name) < 0)
            exit(2);
        SdeltaFile *f;
        SsError e = {0};
        int rc = sdelta_open(path, &f, &e);
        CHECK(rc == 0, "%s does not open: %s", path, e.msg);
        if (!rc) {
            for (int t = 0; t < NT; t++) {
                long j = sdelta_find(f, pairs[t].name);
                uint8_t *buf = malloc(pairs[t].nbytes + 1);
                rc = j < 0 ? -1 : sdelta_decode_tensor(f, (size_t)j, pairs[t].parent, buf, 1, &e);
                CHECK(rc == 0 && memcmp(buf, pairs[t].child, pairs[t].nbytes) == 0,
                      "%s: '%s' does not decode: %s", path, pairs[t].name, e.msg);
                free(buf);
            }
            sdelta_close(f);
        }
        free(path);
    }
    closedir(d);
    free(sd);
    return nfiles;
}

int main(void)
{
    char *dir = tu_tmpdir("kill");
    TuPair pairs[NT];
    const uint64_t s0[] = {1u << 21}, s1[] = {1000, 300}, s2[] = {17};
    tu_pair(&pairs[0], "big", DT_BF16, 1, s0, 0.05);
    tu_pair(&pairs[1], "mid", DT_F32, 2, s1, 0.5);
    tu_pair(&pairs[2], "small", DT_F16, 1, s2, 0.3);
    StTensorSpec specs[NT];
    const void *datas[NT];
    for (int t = 0; t < NT; t++) {
        specs[t] = (StTensorSpec){pairs[t].name, pairs[t].dtype, pairs[t].ndim, pairs[t].shape};
        datas[t] = pairs[t].parent;
    }
    char *base;
    if (asprintf(&base, "%s/%s", dir, RUN_BASE_NAME) < 0)
        exit(2);
    SsError e = {0};
    CHECK(st_write(base, specs, datas, NT, NULL, 0, &e) == 0, "st_write: %s", e.msg);

    /* time one snapshot write, so that kills land before, during and after writes */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    {
        SdeltaTensorSrc child[NT];
        for (int t = 0; t < NT; t++)
            child[t] = tu_src(&pairs[t], true);
        RunWriteOptions o = {.threads = 1};
        CHECK(run_write_snapshot(dir, 99, child, NT, &o, &e) == 0, "write: %s", e.msg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long write_ns = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    long span_ns = 3 * write_ns + 1000000;
    srand((unsigned)time(NULL));
    size_t ntmp = 0;
    int rounds = 30, seen = 0;
    for (int r = 0; r < rounds; r++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            writer_loop(dir, pairs);
        long ns = (long)(((double)rand() / RAND_MAX) * (double)span_ns);
        struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st), "writer exited by itself (status %d)", st);
        seen = check_folder(dir, pairs, &ntmp);
    }
    char *spec;
    if (asprintf(&spec, "%s@latest", dir) < 0)
        exit(2);
    RunCheckpoint *rc;
    CHECK(run_open(spec, &rc, &e) == 0, "%s: %s", spec, e.msg);
    if (seen > 0 && !tu_failures) {
        CHECK(!rc->is_base, "latest is the base although snapshots exist");
        for (size_t i = 0; i < rc->ntensors; i++) {
            uint8_t *buf = malloc(rc->tensors[i].nbytes + 1);
            CHECK(run_tensor_read(rc, i, buf, &e) == 0, "read: %s", e.msg);
            free(buf);
        }
    }
    if (!tu_failures)
        run_close(rc);
    printf("kill: %d rounds, %d complete snapshots, %zu temporary files left and ignored, "
           "%d failures\n", rounds, seen, ntmp, tu_failures);
    free(spec);
    free(base);
    for (int t = 0; t < NT; t++)
        tu_pair_free(&pairs[t]);
    tu_rmtree(dir);
    free(dir);
    return tu_failures ? 1 : 0;
}
