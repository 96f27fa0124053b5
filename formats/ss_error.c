/* Error messages and exit statuses shared by every library and main (see ss_error.h). */
#include "formats/ss_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ss_err(SsError *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ss_err_prefix(SsError *err, const char *fmt, ...)
{
    if (!err)
        return SS_EINPUT;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->code;
}

int ss_exit_status(int code)
{
    switch (code) {
    case SS_OK: return 0;
    case SS_EUSAGE: return 1;
    case SS_EINPUT: return 2;
    case SS_EINCOMPAT: return 3;
    default: return 4;
    }
}
