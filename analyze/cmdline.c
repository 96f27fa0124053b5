/* The command line as one shell-quoted string, recorded in output files (HDF5 "command_line"). */
#include <stdlib.h>
#include <string.h>

#include "analyze/cmdline.h"

char *cmdline_join(int argc, char **argv)
{
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789@%+=:,./_-";
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += 4 * strlen(argv[i]) + 3;
    char *out = malloc(len), *p = out;
    if (!out)
        return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i)
            *p++ = ' ';
        if (*a && strspn(a, safe) == strlen(a)) {
            p = stpcpy(p, a);
            continue;
        }
        *p++ = '\'';
        for (; *a; a++)
            p = *a == '\'' ? stpcpy(p, "'\\''") : (*p = *a, p + 1);
        *p++ = '\'';
    }
    *p = '\0';
    return out;
}
