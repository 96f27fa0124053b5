/* Writing a ScanReport for people (a table, or a per-layer table) and for programs (JSON schema
 * "sparsity-scan/1", documented in docs/cli.md; extended only by adding keys; and HDF5, schema in
 * docs/hdf5-schema.md). */
#ifndef SS_REPORT_H
#define SS_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analyze/grouping.h"
#include "analyze/json_writer.h"
#include "analyze/scan_report.h"
#include "formats/h5_write.h"

#define REPORT_JSON_SCHEMA "sparsity-scan/1"

typedef struct RankReport RankReport; /* analyze/rank.h */
typedef struct MapsReport MapsReport; /* analyze/maps.h */
typedef struct TensorMap TensorMap;   /* analyze/maps.h */

/* The JSON document, pretty-printed, followed by a newline. With g (may be NULL) it includes each
 * tensor's layer and module and the "layers" and "groups" figures; with rank (may be NULL) the
 * "rank" key of --rank; with maps (may be NULL) each matrix's "maps" key of --maps. */
void report_write_json(FILE *f, const ScanReport *r, const Grouping *g, const RankReport *rank,
                       const MapsReport *maps);

/* The count members of a report object (numel, changed, sparsity, nonfinite, changed_tol, and
 * changed_rtol when cfg has an rtol); with deltas also max_abs_delta, l2_delta, rel_l2_delta.
 * Inside an object the caller opened. Shared by the scan and series reports. */
void report_json_counts(JsonWriter *w, const ScanConfig *cfg, const ScanCounts *c, int deltas);

/* The table: a summary, one row per tensor with the least sparse first (at most top rows when
 * top > 0), and a totals line. */
void report_write_table(FILE *f, const ScanReport *r, size_t top);

/* The --by-layer table: the same summary, then one row per layer (weighted sparsity, the mean
 * over its matrices, its least sparse module) and a totals line. */
void report_write_by_layer(FILE *f, const ScanReport *r, const Grouping *g);

/* What the HDF5 report records besides the scan. */
typedef struct ReportH5Meta {
    const char *command_line;  /* the arguments, shell-quoted and joined by spaces */
    uint64_t input_bytes[2];   /* sizes of A's and B's .safetensors files */
} ReportH5Meta;

/* Root attributes every HDF5 report of sparsity-scan carries: schema, tool, tool_version,
 * definitions_version, command_line, tolerances, tolerance_keys, rtol (with one), group_regex
 * (with one: pattern may be NULL). Shared by the scan and series reports. */
int report_h5_common_attrs(H5Out *w, const char *schema, int64_t definitions_version,
                           const char *command_line, const ScanConfig *cfg, const char *pattern,
                           SsError *err);

/* A tensor name as an HDF5 link name in /masks and /maps: '%' written "%25" and '/' "%2F".
 * NULL when out of memory (free the result). */
char *report_h5_tensor_name(const char *tensor);

/* Writes the HDF5 report to path atomically ("<path>.tmp.<pid>", flushed, fsynced, renamed; the
 * temporary file is removed on any failure, and path is never left partly written), with the
 * /rank group when rank is not NULL and the /maps group when maps is not NULL. Returns 0 or SS_EOUTPUT with a message naming path. */
int report_write_h5(const char *path, const ScanReport *r, const Grouping *g,
                    const ReportH5Meta *meta, const RankReport *rank, const MapsReport *maps,
                    SsError *err);

#endif
