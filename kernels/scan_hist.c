/* Tolerance curves (see scan.h, "Tolerance curves"): exponent histograms of |b - a| and of
 * |b - a| / max(|a|, |b|) over the changed elements, walked through the changed-element mask.
 *
 * The bins come from the binary exponent and the 53-bit significand of the doubles, taken
 * from their bits (subnormals normalised), so they are exact: floor(log2 d) is the exponent,
 * d == 2^e when the significand is 1.0, and the relative bin compares two significands.
 * With AVX-512 (and VBMI2), BF16, F16 and F32 take the vector path of kernels/scan_hist_avx512.c
 * (the changed pairs staged, binned 16 at a time, BF16 and F16 in float lanes where that is
 * exact); the rest, and every other dtype, the scalar loop here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype_convert.h"
#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "kernels/scan_elem.h"
#include "kernels/scan_hist_avx512.h"
#include "kernels/scan_isa.h"

/* ---- ranges ---- */

/* abs_lo, abs_hi, and the largest floor(log2 |value|) of a finite value of the dtype. */
static void hist_dtype_limits(DType dt, int32_t *lo, int32_t *hi, int32_t *vmax)
{
    switch (dt) {
    case DT_BF16:
    case DT_F32: *lo = -149; *hi = 128; *vmax = 127; return;
    case DT_F16: *lo = -24; *hi = 16; *vmax = 15; return;
    case DT_F8_E5M2: *lo = -16; *hi = 16; *vmax = 15; return;
    case DT_F8_E4M3: *lo = -9; *hi = 9; *vmax = 8; return;
    case DT_BOOL: case DT_U8: case DT_I8: case DT_I16: case DT_U16: case DT_I32: case DT_U32:
    case DT_I64: case DT_U64: *lo = 0; *hi = 64; *vmax = 64; return;
    default: *lo = -1074; *hi = 1024; *vmax = 1023; return; /* F64 and unknown */
    }
}

ScanHistRange scan_hist_dtype_range(DType dt)
{
    int32_t lo, hi, vmax;
    hist_dtype_limits(dt, &lo, &hi, &vmax);
    return (ScanHistRange){lo, hi, lo - vmax - 1, 1};
}

ScanHistRange scan_hist_range_union(ScanHistRange x, ScanHistRange y)
{
    return (ScanHistRange){x.abs_lo < y.abs_lo ? x.abs_lo : y.abs_lo,
                           x.abs_hi > y.abs_hi ? x.abs_hi : y.abs_hi,
                           x.rel_lo < y.rel_lo ? x.rel_lo : y.rel_lo,
                           x.rel_hi > y.rel_hi ? x.rel_hi : y.rel_hi};
}

static size_t hist_abs_n(const ScanHist *h)
{
    return (size_t)((int64_t)h->range.abs_hi - h->range.abs_lo + 1);
}

static size_t hist_rel_n(const ScanHist *h)
{
    return (size_t)((int64_t)h->range.rel_hi - h->range.rel_lo + 1);
}

int scan_hist_init(ScanHist *h, ScanHistRange r)
{
    memset(h, 0, sizeof *h);
    /* bins are exponents of doubles: a range wider than 2^20 is a caller's bug */
    if (r.abs_lo > r.abs_hi || r.rel_lo > r.rel_hi || (int64_t)r.abs_hi - r.abs_lo >= (1 << 20) ||
        (int64_t)r.rel_hi - r.rel_lo >= (1 << 20))
        return SS_EUSAGE;
    h->range = r;
    size_t na = hist_abs_n(h), nr = hist_rel_n(h);
    h->buf = calloc(2 * (na + nr), sizeof *h->buf);
    if (!h->buf) {
        memset(h, 0, sizeof *h);
        return SS_EOUTPUT;
    }
    h->abs_count = h->buf;
    h->abs_pow2 = h->buf + na;
    h->rel_count = h->buf + 2 * na;
    h->rel_pow2 = h->buf + 2 * na + nr;
    return 0;
}

void scan_hist_free(ScanHist *h)
{
    free(h->buf);
    memset(h, 0, sizeof *h);
}

int scan_hist_merge(ScanHist *dst, const ScanHist *src)
{
    if (!src->buf)
        return 0;
    if (!dst->buf || src->range.abs_lo < dst->range.abs_lo ||
        src->range.abs_hi > dst->range.abs_hi || src->range.rel_lo < dst->range.rel_lo ||
        src->range.rel_hi > dst->range.rel_hi)
        return SS_EUSAGE;
    size_t oa = (size_t)(src->range.abs_lo - dst->range.abs_lo);
    size_t orl = (size_t)(src->range.rel_lo - dst->range.rel_lo);
    for (size_t i = 0; i < hist_abs_n(src); i++) {
        dst->abs_count[oa + i] += src->abs_count[i];
        dst->abs_pow2[oa + i] += src->abs_pow2[i];
    }
    for (size_t i = 0; i < hist_rel_n(src); i++) {
        dst->rel_count[orl + i] += src->rel_count[i];
        dst->rel_pow2[orl + i] += src->rel_pow2[i];
    }
    dst->nonfinite_changed += src->nonfinite_changed;
    dst->zero_delta += src->zero_delta;
    return 0;
}

/* ---- queries ---- */

static uint64_t hist_bin(const uint64_t *bins, int32_t lo, int32_t hi, int32_t e)
{
    return bins && e >= lo && e <= hi ? bins[e - lo] : 0;
}

uint64_t scan_hist_abs_count(const ScanHist *h, int32_t e)
{
    return hist_bin(h->abs_count, h->range.abs_lo, h->range.abs_hi, e);
}

uint64_t scan_hist_abs_pow2(const ScanHist *h, int32_t e)
{
    return hist_bin(h->abs_pow2, h->range.abs_lo, h->range.abs_hi, e);
}

uint64_t scan_hist_rel_count(const ScanHist *h, int32_t k)
{
    return hist_bin(h->rel_count, h->range.rel_lo, h->range.rel_hi, k);
}

uint64_t scan_hist_rel_pow2(const ScanHist *h, int32_t k)
{
    return hist_bin(h->rel_pow2, h->range.rel_lo, h->range.rel_hi, k);
}

uint64_t scan_hist_changed_at_pow2(const ScanHist *h, int32_t k)
{
    uint64_t n = h->nonfinite_changed;
    if (!h->buf)
        return n;
    for (int32_t e = k > h->range.abs_lo ? k : h->range.abs_lo; e <= h->range.abs_hi; e++)
        n += h->abs_count[e - h->range.abs_lo];
    return n - scan_hist_abs_pow2(h, k);
}

static int hist_used(const uint64_t *bins, int32_t lo, int32_t hi, int32_t *ulo, int32_t *uhi)
{
    if (!bins)
        return 0;
    int32_t a = lo, b = hi;
    while (a <= hi && bins[a - lo] == 0)
        a++;
    if (a > hi)
        return 0;
    while (bins[b - lo] == 0)
        b--;
    *ulo = a;
    *uhi = b;
    return 1;
}

int scan_hist_abs_used(const ScanHist *h, int32_t *lo, int32_t *hi)
{
    return hist_used(h->abs_count, h->range.abs_lo, h->range.abs_hi, lo, hi);
}

int scan_hist_rel_used(const ScanHist *h, int32_t *lo, int32_t *hi)
{
    return hist_used(h->rel_count, h->range.rel_lo, h->range.rel_hi, lo, hi);
}

/* ---- the block ---- */

/* Where hist_pair counts: out's count and pow2 bins, indexed by exponent (the pointers are offset
 * by the low end of out's range), and out for the rare totals. */
typedef struct HistSink {
    uint64_t *abs, *abs_pow2, *rel, *rel_pow2;
    ScanHist *out;
} HistSink;

/* Bins one changed pair (the rule: scan_elem_hist_bin; inlined, the common case stays four
 * branch-free adds). */
static inline void hist_pair(double da, double db, const HistSink *k)
{
    ScanElemBin bin;
    int kind = scan_elem_hist_bin(da, db, &bin);
    if (__builtin_expect(kind != SCAN_BIN_OK, 0)) {
        if (kind == SCAN_BIN_NONFINITE)
            k->out->nonfinite_changed++;
        else
            k->out->zero_delta++;
        return;
    }
    k->abs[bin.abs_e]++;
    k->abs_pow2[bin.abs_e] += bin.abs_pow2;
    k->rel[bin.rel_k]++;
    k->rel_pow2[bin.rel_k] += bin.rel_pow2;
}

/* One loop per dtype (dt is a constant after inlining). */
static inline __attribute__((always_inline)) void
hist_loop(DType dt, const void *a, const void *b, size_t n, const uint8_t *mask, ScanHist *out)
{
    ScanHistRange r = out->range;
    const HistSink sink = {out->abs_count - r.abs_lo, out->abs_pow2 - r.abs_lo,
                           out->rel_count - r.rel_lo, out->rel_pow2 - r.rel_lo, out};
    size_t nbytes = n / 8 + (n % 8 != 0);
    for (size_t w = 0; w * 8 < nbytes; w++) {
        uint64_t bits = 0;
        if (nbytes - w * 8 >= 8)
            memcpy(&bits, mask + w * 8, 8); /* little-endian: byte j -> bits 8j..8j+7 */
        else
            memcpy(&bits, mask + w * 8, nbytes - w * 8);
        for (; bits; bits &= bits - 1) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
            hist_pair(ss_decode(dt, a, i), ss_decode(dt, b, i), &sink);
        }
    }
}

/* The scalar loop over every dtype, from a mask. */
static void hist_block_scalar(DType dt, const void *a, const void *b, size_t n,
                              const uint8_t *mask, ScanHist *out)
{
    switch (dt) {
#define HIST_CASE(DT) \
    case DT: hist_loop(DT, a, b, n, mask, out); break;
    HIST_CASE(DT_BOOL)
    HIST_CASE(DT_U8)
    HIST_CASE(DT_I8)
    HIST_CASE(DT_I16)
    HIST_CASE(DT_U16)
    HIST_CASE(DT_I32)
    HIST_CASE(DT_U32)
    HIST_CASE(DT_I64)
    HIST_CASE(DT_U64)
    HIST_CASE(DT_F16)
    HIST_CASE(DT_BF16)
    HIST_CASE(DT_F32)
    HIST_CASE(DT_F64)
    HIST_CASE(DT_F8_E4M3)
    HIST_CASE(DT_F8_E5M2)
#undef HIST_CASE
    default: return;
    }
}

#define HIST_MASK_PIECE ((size_t)1 << 14) /* elements a piece of a computed mask covers */

void scan_hist_block(DType dt, const void *a, const void *b, size_t n, const uint8_t *mask,
                     ScanHist *out)
{
    if (!out->buf || (unsigned)dt >= DT_COUNT)
        return;
    size_t es = dtype_size(dt);
    if (scan_isa_active() == SCAN_ISA_AVX512 && scan_hist_avx512_usable(dt)) {
        size_t done = scan_hist_block_avx512(dt, a, b, n, mask, out); /* whole 64-byte groups */
        a = (const uint8_t *)a + done * es;
        b = (const uint8_t *)b + done * es;
        mask = mask ? mask + done / 8 : NULL;
        n -= done;
    }
    if (mask) {
        hist_block_scalar(dt, a, b, n, mask, out);
        return;
    }
    uint8_t piece[HIST_MASK_PIECE / 8];
    for (size_t o = 0; o < n; o += HIST_MASK_PIECE) {
        size_t len = n - o < HIST_MASK_PIECE ? n - o : HIST_MASK_PIECE;
        const uint8_t *pa = (const uint8_t *)a + o * es, *pb = (const uint8_t *)b + o * es;
        scan_mask_block(dt, pa, pb, len, piece);
        hist_block_scalar(dt, pa, pb, len, piece, out);
    }
}
