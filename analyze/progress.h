/* A one-line progress bar on stderr for long scans: bytes done, GB/s and time left. Drawn only
 * when stderr is a terminal, at most ten times a second, and erased when done. */
#ifndef SS_PROGRESS_H
#define SS_PROGRESS_H

#include <stdint.h>

typedef struct Progress {
    int enabled;
    double t_start;
    double t_last;  /* last redraw */
} Progress;

/* enabled: draw at all (the caller passes !quiet); the bar also needs isatty(stderr). */
void progress_init(Progress *p, int enabled);
/* A ScanProgressFn: ctx is a Progress. */
void progress_update(void *ctx, uint64_t done, uint64_t total);
/* Erases the bar. */
void progress_finish(Progress *p);

#endif
