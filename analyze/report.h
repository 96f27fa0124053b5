/* Writing a ScanReport for people (a table) and for programs (JSON schema "sparsity-scan/1",
 * documented in docs/cli.md; extended only by adding keys). */
#ifndef SS_REPORT_H
#define SS_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "analyze/scan_report.h"

#define REPORT_JSON_SCHEMA "sparsity-scan/1"

/* The JSON document, pretty-printed, followed by a newline. */
void report_write_json(FILE *f, const ScanReport *r);

/* The table: a summary, one row per tensor with the least sparse first (at most top rows when
 * top > 0), and a totals line. */
void report_write_table(FILE *f, const ScanReport *r, size_t top);

#endif
