/* Reading and clearing HDF5's error stack (see h5_error.h). */
#include "formats/h5_error.h"

#include <stdio.h>

#include <hdf5.h>

typedef struct H5ErrorText {
    char *buf;
    size_t len;
} H5ErrorText;

/* Keeps entry 0 of an upward walk: the innermost one. */
static herr_t h5_error_keep_innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    H5ErrorText *t = data;
    if (n == 0 && e && e->desc)
        snprintf(t->buf, t->len, "%s", e->desc);
    return 0;
}

void h5_error_take(char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    H5ErrorText t = {buf, len};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_error_keep_innermost, &t);
    H5Eclear2(H5E_DEFAULT);
}
