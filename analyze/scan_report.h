/* Scanning two checkpoints: match their tensors, run the scan pass over every shared pair, and
 * keep per-tensor counts and totals for the reports (table, JSON). */
#ifndef SS_SCAN_REPORT_H
#define SS_SCAN_REPORT_H

#include <stdint.h>

#include "analyze/ckpt_source.h"
#include "analyze/pairs.h"
#include "formats/safetensors.h"
#include "kernels/scan.h"

typedef struct ScanOptions {
    ScanConfig cfg;
    int threads;              /* 0: all cores */
    int skip_mismatched;
    ScanProgressFn progress;  /* may be NULL */
    void *progress_ctx;
    int masks;                /* keep each pair's changed-element mask (ScanReport.masks) */
    int delta_dtype;          /* tolerances test |round(b - a)| > t: 0 off (exact difference),
                                 1 rounded to each tensor's own dtype, else DT_* + 2 for one dtype */
    int hist;                 /* also bin each pair's changed elements (ScanReport.hists) */
    int device;               /* ScanDevice (kernels/scan_cuda.h), resolved: SCAN_DEVICE_CPU (0,
                                 the default) or SCAN_DEVICE_CUDA */
} ScanOptions;

typedef struct ScanReport {
    const char *path_a, *path_b;
    ScanConfig cfg;
    int delta_dtype;          /* as in ScanOptions */
    PairList pairs;           /* the compared pairs and the names left out */
    ScanCounts *counts;       /* counts[i] for pairs.pairs[i] */
    ScanCounts total;         /* merged over all pairs, in name order */
    uint64_t bytes_scanned;   /* bytes of A plus B */
    double seconds;           /* wall time of the scan pass */
    int threads;              /* ScanOptions.threads (0: all cores), for the report writers */
    uint8_t **masks;          /* with ScanOptions.masks: masks[i] for pairs.pairs[i], its
                                 ceil(numel/8) bytes as scan_mask_block writes them (NULL for an
                                 empty tensor); NULL without. All are held until
                                 scan_report_free: memory grows by numel/8 bytes over all pairs */
    ScanHist *hists;          /* with ScanOptions.hist: hists[i] for pairs.pairs[i], in the range
                                 of its dtype (scan_hist_dtype_range; the exact difference, also
                                 under --delta-dtype); NULL without */
    ScanHist hist_total;      /* with ScanOptions.hist: the merge of all hists, in the union of
                                 their ranges (buf NULL without, or with no pairs) */
} ScanReport;

/* Decoded bytes (of run snapshots) held at once while scanning; a larger tensor pair is held
 * alone. */
#define SCAN_BATCH_BYTES ((uint64_t)256 << 20)

/* Scans a against b. On success fills out (free with scan_report_free). Mapped checkpoints are
 * scanned in place; run snapshots are decoded in batches of about SCAN_BATCH_BYTES. With
 * opt->masks the masks are allocated up front (SS_EOUTPUT naming the tensor when memory runs
 * out) and written by the scan pass itself. */
int scan_sources(CkptSource *a, CkptSource *b, const ScanOptions *opt, ScanReport *out,
                 SsError *err);

/* scan_sources for two mapped safetensors checkpoints. */
int scan_checkpoints(const StCheckpoint *a, const StCheckpoint *b, const ScanOptions *opt,
                     ScanReport *out, SsError *err);
void scan_report_free(ScanReport *r);

/* 1 - changed/numel, and 1 for an empty tensor. */
double scan_sparsity(const ScanCounts *c);
/* ||B - A||_2 over finite pairs. */
double scan_l2_delta(const ScanCounts *c);
/* ||B - A||_2 / ||A||_2; NaN when ||A||_2 is 0. */
double scan_rel_l2_delta(const ScanCounts *c);

/* Bytes of the changed-element mask of numel elements, ceil(numel/8). */
uint64_t scan_mask_bytes(uint64_t numel);

/* "same", "BF16", "F16" or "F32" for a delta_dtype setting (NULL for 0: off). */
const char *scan_delta_dtype_name(int delta_dtype);

/* The key a tolerance has in reports: C's "%g" of it (1e-05). */
void scan_tol_key(double tol, char *buf, size_t len);

#endif
