/* The one error-reporting style of sparsity-scan's libraries.
 *
 * Library functions return 0 on success or a negative SS_E* code, and fill an SsError whose message
 * reads "<file>: tensor '<name>': <reason>" (file and tensor where they are known). Only the
 * command-line mains print messages and turn codes into exit statuses (ss_exit_status). */
#ifndef SS_ERROR_H
#define SS_ERROR_H

#include <stddef.h>

enum {
    SS_OK = 0,
    SS_EUSAGE = -1,    /* bad arguments from the caller                        -> exit 1 */
    SS_EINPUT = -2,    /* unreadable or malformed input file                   -> exit 2 */
    SS_EINCOMPAT = -3, /* two checkpoints that cannot be compared              -> exit 3 */
    SS_EOUTPUT = -4,   /* cannot write an output file, or out of memory        -> exit 4 */
};

typedef struct SsError {
    int code;        /* the last SS_E* code set, SS_OK if none */
    char msg[1024];  /* human-readable, no trailing newline */
} SsError;

/* Fills err (if not NULL) with code and a printf-style message; returns code. */
int ss_err(SsError *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with printf-style text followed by ": ". Returns err->code. */
int ss_err_prefix(SsError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The process exit status documented for a code: 0, 1, 2, 3 or 4. */
int ss_exit_status(int code);

#endif
