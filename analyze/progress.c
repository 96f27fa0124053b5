/* The stderr progress bar (see progress.h). */
#include "analyze/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(Progress *p, int enabled)
{
    p->enabled = enabled && isatty(STDERR_FILENO);
    p->t_start = now_seconds();
    p->t_last = 0;
}

void progress_update(void *ctx, uint64_t done, uint64_t total)
{
    Progress *p = ctx;
    if (!p->enabled || total == 0)
        return;
    double t = now_seconds();
    if (t - p->t_last < 0.1 && done < total)
        return;
    p->t_last = t;
    double elapsed = t - p->t_start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0; /* bytes/s */
    double left = rate > 0 ? (double)(total - done) / rate : 0;
    enum { WIDTH = 30 };
    int fill = (int)((double)WIDTH * (double)done / (double)total);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %.2f/%.2f GB  %.2f GB/s  %d:%02d left ", bar, (double)done / 1e9,
            (double)total / 1e9, rate / 1e9, (int)(left / 60), (int)left % 60);
    fflush(stderr);
}

void progress_finish(Progress *p)
{
    if (!p->enabled)
        return;
    fprintf(stderr, "\r%*s\r", 79, "");
    fflush(stderr);
}
