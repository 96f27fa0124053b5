/* ckpt-delta: encode, apply, inspect and verify .sdelta snapshots (docs/ckpt-delta.md).
 * A thin main: parse options, call formats/sdelta, print, exit with ss_exit_status. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "formats/sdelta/run.h"
#include "formats/sdelta/sdelta.h"

static void usage(FILE *o)
{
    fprintf(o,
            "usage: ckpt-delta encode PARENT CHILD -o OUT.sdelta [--step N] [--parent-name NAME]\n"
            "                         [--meta KEY=VALUE]... [--chunk-elems N] [--threads N]\n"
            "       ckpt-delta apply PARENT DELTA -o OUT.safetensors [--threads N]\n"
            "       ckpt-delta info DELTA\n"
            "       ckpt-delta verify DELTA [PARENT] [--threads N]\n"
            "       ckpt-delta snapshot RUN CHILD --step N [--chain] [--meta KEY=VALUE]...\n"
            "       ckpt-delta materialize RUN@STEP -o OUT.safetensors [--threads N]\n"
            "PARENT and CHILD are .safetensors files or Hugging Face model folders.\n"
            "Exit status: 0 ok, 1 usage, 2 bad input, 3 wrong parent, 4 cannot write.\n");
}

typedef struct Opts {
    const char *out, *parent_name;
    uint64_t step, chunk_elems;
    bool have_step, chain;
    int threads;
    StMeta *meta;
    size_t nmeta;
    char **pos;
    int npos;
} Opts;

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!*s || *s == '-')
        return false;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end)
        return false;
    *v = x;
    return true;
}

static int parse_opts(int argc, char **argv, Opts *o)
{
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"step", required_argument, 0, 's'},
        {"parent-name", required_argument, 0, 'p'}, {"meta", required_argument, 0, 'm'},
        {"chunk-elems", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"chain", no_argument, 0, 'C'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->meta = calloc((size_t)argc + 1, sizeof *o->meta);
    if (!o->meta)
        return -1;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "o:s:p:m:c:t:h", lo, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 'o': o->out = optarg; break;
        case 's':
            if (!parse_u64(optarg, &o->step))
                return -1;
            o->have_step = true;
            break;
        case 'p': o->parent_name = optarg; break;
        case 'm': {
            char *eq = strchr(optarg, '=');
            if (!eq)
                return -1;
            *eq = '\0';
            o->meta[o->nmeta].key = optarg;
            o->meta[o->nmeta].value = eq + 1;
            o->nmeta++;
            break;
        }
        case 'c':
            if (!parse_u64(optarg, &o->chunk_elems) || o->chunk_elems == 0)
                return -1;
            break;
        case 't':
            if (!parse_u64(optarg, &v) || v > 1024)
                return -1;
            o->threads = (int)v;
            break;
        case 'C': o->chain = true; break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    o->pos = argv + optind;
    o->npos = argc - optind;
    return 0;
}

static int fail(const SsError *e)
{
    fprintf(stderr, "ckpt-delta: %s\n", e->msg);
    return ss_exit_status(e->code);
}

/* The child's tensors as sources, and its single file's metadata followed by --meta. */
static int child_sources(const StCheckpoint *ck, const Opts *o, SdeltaTensorSrc **src,
                         StMeta **meta, size_t *nmeta)
{
    *src = calloc(ck->ntensors + 1, sizeof **src);
    size_t fm = ck->nfiles == 1 ? ck->files[0]->nmeta : 0;
    *meta = calloc(fm + o->nmeta + 1, sizeof **meta);
    if (!*src || !*meta)
        return -1;
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        (*src)[i] = (SdeltaTensorSrc){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    *nmeta = 0;
    for (size_t i = 0; i < fm; i++)
        (*meta)[(*nmeta)++] = ck->files[0]->meta[i];
    for (size_t i = 0; i < o->nmeta; i++)
        (*meta)[(*nmeta)++] = o->meta[i];
    return 0;
}

static int cmd_encode(const Opts *o)
{
    if (o->npos != 2 || !o->out) {
        usage(stderr);
        return 1;
    }
    SsError e = {0};
    StCheckpoint *parent = NULL, *child = NULL;
    SdeltaTensorSrc *src = NULL;
    StMeta *meta = NULL;
    size_t nmeta = 0;
    int rc = st_open(o->pos[0], &parent, &e);
    if (!rc)
        rc = st_open(o->pos[1], &child, &e);
    if (!rc && child_sources(child, o, &src, &meta, &nmeta))
        rc = ss_err(&e, SS_EOUTPUT, "out of memory");
    if (!rc) {
        SdeltaWriteOptions w;
        sdelta_write_options_init(&w);
        w.step = o->step;
        w.parent_name = o->parent_name;
        w.chunk_elems = o->chunk_elems;
        w.threads = o->threads;
        w.meta = meta;
        w.nmeta = nmeta;
        rc = sdelta_write(o->out, parent, src, child->ntensors, &w, &e);
    }
    free(src);
    free(meta);
    st_close(parent);
    st_close(child);
    return rc ? fail(&e) : 0;
}

static int cmd_snapshot(const Opts *o)
{
    if (o->npos != 2 || !o->have_step) {
        usage(stderr);
        return 1;
    }
    SsError e = {0};
    StCheckpoint *child = NULL;
    SdeltaTensorSrc *src = NULL;
    StMeta *meta = NULL;
    size_t nmeta = 0;
    int rc = st_open(o->pos[1], &child, &e);
    if (!rc && child_sources(child, o, &src, &meta, &nmeta))
        rc = ss_err(&e, SS_EOUTPUT, "out of memory");
    if (!rc) {
        RunWriteOptions w = {.chain = o->chain, .meta = meta, .nmeta = nmeta, .threads = o->threads};
        rc = run_write_snapshot(o->pos[0], o->step, src, child->ntensors, &w, &e);
    }
    free(src);
    free(meta);
    st_close(child);
    return rc ? fail(&e) : 0;
}

static int cmd_apply(const Opts *o)
{
    if (o->npos != 2 || !o->out) {
        usage(stderr);
        return 1;
    }
    SsError e = {0};
    StCheckpoint *parent = NULL;
    SdeltaFile *f = NULL;
    int rc = st_open(o->pos[0], &parent, &e);
    if (!rc)
        rc = sdelta_open(o->pos[1], &f, &e);
    if (!rc)
        rc = sdelta_apply(f, parent, o->out, o->threads, &e);
    sdelta_close(f);
    st_close(parent);
    return rc ? fail(&e) : 0;
}

static int cmd_materialize(const Opts *o)
{
    if (o->npos != 1 || !o->out) {
        usage(stderr);
        return 1;
    }
    SsError e = {0};
    RunCheckpoint *rc = NULL;
    int r = run_open(o->pos[0], &rc, &e);
    StTensorSpec *specs = NULL;
    void *buf = NULL;
    if (!r) {
        rc->threads = o->threads;
        specs = calloc(rc->ntensors + 1, sizeof *specs);
        uint64_t maxb = 1;
        for (size_t i = 0; specs && i < rc->ntensors; i++) {
            const RunTensor *t = &rc->tensors[i];
            specs[i] = (StTensorSpec){t->name, t->dtype, t->ndim, t->shape};
            if (t->nbytes > maxb)
                maxb = t->nbytes;
        }
        buf = malloc((size_t)maxb);
        if (!specs || !buf)
            r = ss_err(&e, SS_EOUTPUT, "out of memory");
    }
    if (!r) {
        StWriter *w;
        r = st_writer_open(o->out, specs, rc->ntensors, NULL, 0, &w, &e);
        for (size_t i = 0; !r && i < rc->ntensors; i++) {
            r = run_tensor_read(rc, i, buf, &e);
            if (!r)
                r = st_writer_put(w, buf, (size_t)rc->tensors[i].nbytes, &e);
        }
        if (r == 0)
            r = st_writer_close(w, &e);
        else if (w)
            st_writer_abort(w);
    }
    free(buf);
    free(specs);
    run_close(rc);
    return r ? fail(&e) : 0;
}

static void print_shape(const SdeltaTensorInfo *t, char *s, size_t n)
{
    size_t k = (size_t)snprintf(s, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(s + k, n - k, "%s%" PRIu64, d ? "," : "", t->shape[d]);
    if (k < n)
        snprintf(s + k, n - k, "]");
}

static int cmd_info(const Opts *o)
{
    if (o->npos != 1) {
        usage(stderr);
        return 1;
    }
    SsError e = {0};
    SdeltaFile *f;
    if (sdelta_open(o->pos[0], &f, &e))
        return fail(&e);
    printf("file:     %s (sdelta %u.%u, %" PRIu64 " bytes, %" PRIu64 " of them header)\n", f->path,
           f->version_major, f->version_minor, f->file_size, f->header_bytes);
    printf("step:     %" PRIu64 "\n", f->step);
    printf("parent:   %s (parent hash %016" PRIx64 ")\n", f->parent_name, f->parent_hash);
    printf("chunks:   %" PRIu64 " elements each\n", f->chunk_elems);
    for (size_t i = 0; i < f->nmeta; i++)
        printf("metadata: %s = %s\n", f->meta[i].key, f->meta[i].value);
    printf("%-48s %-7s %-16s %12s %9s %-22s %12s %9s\n", "tensor", "dtype", "shape", "changed",
           "changed%", "encoding", "bytes", "ratio");
    uint64_t tot_el = 0, tot_ch = 0, tot_raw = 0, tot_st = 0;
    for (size_t i = 0; i < f->ntensors; i++) {
        const SdeltaTensorInfo *t = &f->tensors[i];
        char shape[64], enc[64] = "";
        print_shape(t, shape, sizeof shape);
        size_t k = 0;
        int kinds = 0;
        for (int m = 0; m < SDELTA_NMODES; m++)
            if (t->chunks_by_mode[m])
                kinds++;
        for (int m = 0; m < SDELTA_NMODES && k < sizeof enc; m++) {
            if (!t->chunks_by_mode[m])
                continue;
            if (kinds == 1)
                k += (size_t)snprintf(enc + k, sizeof enc - k, "%s", sdelta_mode_name(m));
            else
                k += (size_t)snprintf(enc + k, sizeof enc - k, "%s%s:%" PRIu64, k ? "," : "",
                                      sdelta_mode_name(m), t->chunks_by_mode[m]);
        }
        if (!kinds)
            snprintf(enc, sizeof enc, "empty");
        if (!t->has_parent && k < sizeof enc)
            snprintf(enc + k, sizeof enc - k, "%s", " (no parent)");
        double pct = t->numel ? 100.0 * (double)t->nchanged / (double)t->numel : 0.0;
        char ratio[32];
        if (t->stored_bytes)
            snprintf(ratio, sizeof ratio, "%.1f", (double)t->nbytes / (double)t->stored_bytes);
        else
            snprintf(ratio, sizeof ratio, "inf");
        printf("%-48s %-7s %-16s %12" PRIu64 " %8.4f%% %-22s %12" PRIu64 " %9s\n", t->name,
               dtype_name(t->dtype), shape, t->nchanged, pct, enc, t->stored_bytes, ratio);
        tot_el += t->numel;
        tot_ch += t->nchanged;
        tot_raw += t->nbytes;
        tot_st += t->stored_bytes;
    }
    printf("total:    %zu tensors, %" PRIu64 " of %" PRIu64 " elements changed (%.4f%%), "
           "%" PRIu64 " tensor bytes in %" PRIu64 " file bytes (ratio %.2f)\n",
           f->ntensors, tot_ch, tot_el, tot_el ? 100.0 * (double)tot_ch / (double)tot_el : 0.0,
           tot_raw, f->file_size, f->file_size ? (double)tot_raw / (double)f->file_size : 0.0);
    (void)tot_st;
    sdelta_close(f);
    return 0;
}

static int cmd_verify(const Opts *o)
{
    if (o->npos < 1 || o->npos > 2) {
        usage(stderr);
        return 1;
    }
    SsError e = {0};
    SdeltaFile *f = NULL;
    StCheckpoint *parent = NULL;
    int rc = sdelta_open(o->pos[0], &f, &e);
    if (!rc && o->npos == 2)
        rc = st_open(o->pos[1], &parent, &e);
    if (!rc)
        rc = sdelta_verify(f, parent, o->threads, &e);
    if (!rc)
        printf("%s: ok (%zu tensors%s)\n", o->pos[0], f->ntensors,
               parent ? ", decoded against the parent" : ", checksums only");
    sdelta_close(f);
    st_close(parent);
    return rc ? fail(&e) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    Opts o;
    if (parse_opts(argc, argv, &o)) {
        usage(stderr);
        free(o.meta);
        return 1;
    }
    int rc;
    if (strcmp(cmd, "encode") == 0)
        rc = cmd_encode(&o);
    else if (strcmp(cmd, "apply") == 0)
        rc = cmd_apply(&o);
    else if (strcmp(cmd, "info") == 0)
        rc = cmd_info(&o);
    else if (strcmp(cmd, "verify") == 0)
        rc = cmd_verify(&o);
    else if (strcmp(cmd, "snapshot") == 0)
        rc = cmd_snapshot(&o);
    else if (strcmp(cmd, "materialize") == 0)
        rc = cmd_materialize(&o);
    else {
        usage(stderr);
        rc = 1;
    }
    free(o.meta);
    return rc;
}
