/* Update maps (sparsity-scan --maps): for every 2-D tensor pair, from its changed-element mask
 * (ScanReport.masks, row-major (R, C)), the changed count of every row and column, the changed
 * count of every cell of a map of at most MAPS_MAX_CELLS x MAPS_MAX_CELLS cells (the density map
 * is that over the cell sizes), per-head fractions for attention projections, and the row and
 * column stripe ratios. Definitions: docs/metrics.md, "Update maps".
 *
 * Memory: the maps of all matrices are held until the reports are written: (R + C) * 8 bytes and
 * at most 512 x 512 cell counts per matrix, each in the smallest unsigned type that holds the
 * largest cell's size (1 byte for cells of at most 255 elements: 256 KiB). */
#ifndef SS_MAPS_H
#define SS_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/json_writer.h"
#include "analyze/scan_report.h"
#include "formats/h5_write.h"
#include "formats/ss_error.h"
#include "kernels/threadpool.h"

#define MAPS_MAX_CELLS 512
#define MAPS_DEFAULT_STRIPE_K 2.0

typedef enum MapsHeadKind {
    MAPS_HEADS_NONE = 0,
    MAPS_HEADS_ROWS = 1,  /* q_proj, k_proj, v_proj: (heads * head_dim, hidden), heads = row blocks */
    MAPS_HEADS_COLS = 2,  /* o_proj: (hidden, heads * head_dim), heads = column blocks */
} MapsHeadKind;

typedef struct MapsOptions {
    uint64_t head_dim;    /* 0: unknown (then an attention projection is an error) */
    double stripe_k;      /* K of the stripe ratios (> 0) */
} MapsOptions;

/* The maps of one tensor pair; rows == 0 for a tensor that is not a non-empty matrix (no map). */
typedef struct TensorMap {
    const char *name;             /* points into the checkpoint listing */
    uint64_t rows, cols;          /* R, C */
    uint64_t changed;             /* popcount of the mask */
    uint64_t *row_changed;        /* [R] */
    uint64_t *col_changed;        /* [C] */
    uint64_t map_rows, map_cols;  /* r = min(R, 512), c = min(C, 512) */
    uint64_t *row_edges;          /* [r + 1]: cell row i covers rows [row_edges[i], row_edges[i+1]) */
    uint64_t *col_edges;          /* [c + 1]: likewise for the columns */
    H5wType cell_type;            /* H5W_U8, _U16, _U32 or _U64: the smallest that holds the
                                     largest cell's element count */
    void *cell_changed;           /* [r * c] of cell_type, row-major: changed elements per cell */
    MapsHeadKind head_kind;
    uint64_t head_dim, nheads;    /* 0, 0 without head fractions */
    double *head_fraction;        /* [nheads] */
    double row_stripe_ratio;      /* share of rows with row_changed/C > K * changed/(R*C) */
    double col_stripe_ratio;      /* likewise for columns */
} TensorMap;

typedef struct MapsReport {
    double stripe_k;
    uint64_t head_dim;            /* the head size used (0: none needed or none found) */
    char *head_dim_source;        /* "--head-dim" or the config.json path; NULL when head_dim 0 */
    size_t ntensors;
    TensorMap *t;                 /* one per pair, in pair (name) order */
} MapsReport;

/* MAPS_HEADS_ROWS / _COLS when a '.'-separated component of name is q_proj, k_proj, v_proj
 * (rows) or o_proj (columns); else MAPS_HEADS_NONE. */
MapsHeadKind maps_head_kind(const char *name);

/* Reads the head size from config.json beside checkpoint spec (the folder itself, the folder of
 * a file, or a run folder's for RUN@STEP): "head_dim", else hidden_size / num_attention_heads.
 * *head_dim = 0 and *source = NULL when there is no config.json or it gives no head size; else
 * *source is the config path (malloc'd). A config.json that is not valid JSON is SS_EINPUT. */
int maps_head_dim_from_config(const char *spec, uint64_t *head_dim, char **source, SsError *err);

/* Checks, before any scan, that every 2-D attention projection of the checkpoint listing ck
 * can be split into heads of head_dim (0: unknown): SS_EUSAGE saying to pass --head-dim when the
 * size is unknown, or naming the tensor when it does not divide its head dimension. */
int maps_check_heads(const StCheckpoint *ck, uint64_t head_dim, SsError *err);

/* The maps of an (rows, cols) tensor from its mask (LSB-first, ceil(rows*cols/8) bytes) into
 * out->row_changed, col_changed, the cell fields, changed and the stripe ratios (head fields
 * untouched). SS_EOUTPUT when out of memory. */
int maps_compute_tensor(const uint8_t *mask, uint64_t rows, uint64_t cols, double stripe_k,
                        TensorMap *out, SsError *err);

/* The maps of every 2-D pair of r (which must hold masks), after maps_check_heads passed on
 * A's listing (the same errors are returned here should it not have been called). out->head_dim_source is taken from source (owned
 * from then on, also on failure). Free with maps_report_free (also after a failure). */
int maps_build(const ScanReport *r, const MapsOptions *opt, char *source, MapsReport *out,
               SsError *err);
void maps_report_free(MapsReport *m);

/* ---- reports (analyze/report_maps.c) ---- */

/* The value of a tensor's "maps" key: {"row_stripe_ratio", "col_stripe_ratio", "head_fraction"
 * (when known)}. After the caller wrote the key. */
void report_maps_json(JsonWriter *w, const TensorMap *t);

/* The group /maps (docs/hdf5-schema.md) in the report file being written; the cell maps'
 * chunks are filtered on pool (NULL: on the calling thread). */
int report_maps_h5(H5Out *w, ThreadPool *pool, const MapsReport *m, SsError *err);

#endif
