/* MPI scale-out of the scan (see scan_mpi.h): launch detection, the byte-balanced partition,
 * status agreement and the gather of per-pair results to rank 0. Without SS_HAVE_MPI the
 * collectives are no-ops of one rank. */
#include "analyze/scan_mpi.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef SS_HAVE_MPI
#include <mpi.h>
#endif

static int g_active;   /* MPI_Init was called */
static int g_rank, g_size = 1;

/* An int environment variable, or -1 when unset or not a number. */
static long env_long(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end ? -1 : v;
}

/* Started by an MPI launcher: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE, PMIx launchers
 * (srun --mpi=pmix, prun) PMIX_RANK, older PMI ones PMI_RANK. */
static int launched_by_mpi(void)
{
    return env_long("OMPI_COMM_WORLD_SIZE") > 0 || env_long("PMIX_RANK") >= 0 ||
           env_long("PMI_RANK") >= 0;
}

int scan_mpi_init(int *argc, char ***argv, SsError *err)
{
    if (!launched_by_mpi())
        return 0;
#ifdef SS_HAVE_MPI
    (void)err;
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    g_active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return 0;
#else
    (void)argc;
    (void)argv;
    if (env_long("OMPI_COMM_WORLD_SIZE") > 1)
        return ss_err(err, SS_EUSAGE, "started by mpirun with %ld ranks, but this build has no "
                      "MPI support (rebuild with libopenmpi-dev installed; docs/mpi.md)",
                      env_long("OMPI_COMM_WORLD_SIZE"));
    return 0;
#endif
}

void scan_mpi_finalize(void)
{
#ifdef SS_HAVE_MPI
    if (g_active)
        MPI_Finalize();
#endif
    g_active = 0;
}

int scan_mpi_rank(void)
{
    return g_rank;
}

int scan_mpi_size(void)
{
    return g_size;
}

int scan_mpi_default_threads(void)
{
    if (g_size <= 1)
        return 0;
    long local = env_long("OMPI_COMM_WORLD_LOCAL_SIZE");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (local <= 0 || cores <= 0)
        return 0;
    long t = cores / local;
    return t < 1 ? 1 : t > INT_MAX ? INT_MAX : (int)t;
}

/* Sort context: indices by bytes descending, then index ascending. */
static const uint64_t *g_sort_bytes;

static int by_bytes_desc(const void *x, const void *y)
{
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    if (g_sort_bytes[i] != g_sort_bytes[j])
        return g_sort_bytes[i] > g_sort_bytes[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

void scan_mpi_partition(const uint64_t *bytes, size_t n, int nranks, int *owner)
{
    if (nranks <= 1 || n == 0) {
        for (size_t i = 0; i < n; i++)
            owner[i] = 0;
        return;
    }
    size_t *order = malloc(n * sizeof *order);
    uint64_t *load = calloc((size_t)nranks, sizeof *load);
    if (!order || !load) {
        /* out of memory for the plan: round robin is still a valid (if unbalanced) plan */
        for (size_t i = 0; i < n; i++)
            owner[i] = (int)(i % (size_t)nranks);
        free(order);
        free(load);
        return;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    g_sort_bytes = bytes;
    qsort(order, n, sizeof *order, by_bytes_desc);
    for (size_t k = 0; k < n; k++) {
        int best = 0;
        for (int r = 1; r < nranks; r++)
            if (load[r] < load[best])
                best = r;
        owner[order[k]] = best;
        load[best] += bytes[order[k]];
    }
    free(order);
    free(load);
}

#ifdef SS_HAVE_MPI
int scan_mpi_agree(int rc, SsError *err)
{
    if (!g_active || g_size <= 1)
        return rc;
    int *all = malloc((size_t)g_size * sizeof *all);
    if (!all)
        MPI_Abort(MPI_COMM_WORLD, 4); /* cannot agree without the table; abort is the only way */
    MPI_Allgather(&rc, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    int failed = -1;
    for (int r = 0; r < g_size && failed < 0; r++)
        if (all[r] != 0)
            failed = r;
    int out = failed < 0 ? 0 : all[failed];
    free(all);
    if (failed >= 0) {
        char msg[sizeof err->msg];
        if (g_rank == failed)
            memcpy(msg, err->msg, sizeof msg);
        MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, failed, MPI_COMM_WORLD);
        msg[sizeof msg - 1] = '\0';
        err->code = out;
        memcpy(err->msg, msg, sizeof msg);
    }
    return out;
}

int scan_mpi_share_status(int rc, SsError *err)
{
    if (!g_active || g_size <= 1)
        return rc;
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc) {
        MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, 0, MPI_COMM_WORLD);
        err->msg[sizeof err->msg - 1] = '\0';
        err->code = rc;
    }
    return rc;
}

/* Messages of at most this many bytes (MPI counts are int). */
#define GATHER_PIECE ((uint64_t)1 << 30)

/* Sends (to rank 0) or receives (from src) len bytes at p, in pieces. */
static int xfer(int send, void *p, uint64_t len, int peer)
{
    for (uint64_t off = 0; off < len;) {
        int piece = (int)(len - off < GATHER_PIECE ? len - off : GATHER_PIECE);
        int e = send ? MPI_Send((char *)p + off, piece, MPI_BYTE, peer, 0, MPI_COMM_WORLD)
                     : MPI_Recv((char *)p + off, piece, MPI_BYTE, peer, 0, MPI_COMM_WORLD,
                                MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS)
            return -1;
        off += (uint64_t)piece;
    }
    return 0;
}

/* The bins of h (2 * (abs + rel) counts), as scan_hist_init lays them out in h->buf. */
static uint64_t hist_bins(const ScanHist *h)
{
    uint64_t na = (uint64_t)(h->range.abs_hi - h->range.abs_lo + 1);
    uint64_t nr = (uint64_t)(h->range.rel_hi - h->range.rel_lo + 1);
    return 2 * (na + nr);
}

int scan_mpi_gather(ScanReport *r, const int *owner, SsError *err)
{
    if (!g_active || g_size <= 1)
        return 0;
    for (size_t i = 0; i < r->pairs.npairs; i++) {
        int src = owner[i];
        if (src == 0 || (g_rank != 0 && g_rank != src))
            continue;
        int send = g_rank != 0;
        int peer = send ? 0 : src;
        int e = xfer(send, &r->counts[i], sizeof r->counts[i], peer);
        if (e == 0 && r->hists) {
            ScanHist *h = &r->hists[i];
            uint64_t extra[2] = {h->nonfinite_changed, h->zero_delta};
            e = xfer(send, extra, sizeof extra, peer);
            h->nonfinite_changed = extra[0];
            h->zero_delta = extra[1];
            if (e == 0 && h->buf)
                e = xfer(send, h->buf, hist_bins(h) * sizeof *h->buf, peer);
        }
        if (e == 0 && r->masks && r->masks[i])
            e = xfer(send, r->masks[i], scan_mask_bytes(r->pairs.pairs[i].a->numel), peer);
        if (e)
            return ss_err(err, SS_EOUTPUT, "tensor '%s': MPI transfer between rank %d and 0 "
                          "failed", r->pairs.pairs[i].a->name, src);
    }
    return 0;
}
#else
int scan_mpi_agree(int rc, SsError *err)
{
    (void)err;
    return rc;
}

int scan_mpi_share_status(int rc, SsError *err)
{
    (void)err;
    return rc;
}

int scan_mpi_gather(ScanReport *r, const int *owner, SsError *err)
{
    (void)r;
    (void)owner;
    (void)err;
    return 0;
}
#endif
