/* Parsing of SIZE arguments ("2G", "500MB") for ckpt-synth's --target-bytes and --shard-size. */
#include "train/synth.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

int synth_size_parse(const char *text, uint64_t *out, SsError *err)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return ss_err(err, SS_EUSAGE, "invalid size '%s': expected a number with an optional "
                      "K, M, G, T (powers of 1024) or KB, MB, GB, TB (powers of 1000) suffix",
                      text ? text : "");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return ss_err(err, SS_EUSAGE, "invalid size '%s': too large", text);

    static const struct { const char *suffix; uint64_t mult; } units[] = {
        {"", 1}, {"B", 1},
        {"K", 1ull << 10}, {"KIB", 1ull << 10}, {"KB", 1000ull},
        {"M", 1ull << 20}, {"MIB", 1ull << 20}, {"MB", 1000000ull},
        {"G", 1ull << 30}, {"GIB", 1ull << 30}, {"GB", 1000000000ull},
        {"T", 1ull << 40}, {"TIB", 1ull << 40}, {"TB", 1000000000000ull},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        uint64_t r;
        if (__builtin_mul_overflow((uint64_t)v, units[i].mult, &r))
            return ss_err(err, SS_EUSAGE, "invalid size '%s': too large", text);
        if (r == 0)
            return ss_err(err, SS_EUSAGE, "invalid size '%s': must be positive", text);
        *out = r;
        return SS_OK;
    }
    return ss_err(err, SS_EUSAGE, "invalid size '%s': unknown suffix '%s' (use K, M, G, T, KB, "
                  "MB, GB or TB)", text, end);
}
