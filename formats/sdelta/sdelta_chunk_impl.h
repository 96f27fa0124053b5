/* Element-level helpers shared by the chunk encoder and decoder: loads and stores of 1-, 2-,
 * 4- and 8-byte elements, the XOR and SUB transforms, and the per-width dispatch. Functions are
 * always inlined with a constant width so that each width gets its own loop. Private to
 * formats/sdelta/. */
#ifndef SDELTA_CHUNK_IMPL_H
#define SDELTA_CHUNK_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "formats/sdelta/sdelta_chunk.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- element access, specialized per width by always-inlining with a constant w ---- */

ALWAYS_INLINE uint64_t ld(const uint8_t *p, size_t i, unsigned w)
{
    switch (w) {
    case 1: return p[i];
    case 2: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    default: { uint64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    }
}

ALWAYS_INLINE void st(uint8_t *p, size_t i, unsigned w, uint64_t x)
{
    switch (w) {
    case 1: p[i] = (uint8_t)x; break;
    case 2: { uint16_t v = (uint16_t)x; memcpy(p + 2 * i, &v, 2); break; }
    case 4: { uint32_t v = (uint32_t)x; memcpy(p + 4 * i, &v, 4); break; }
    default: memcpy(p + 8 * i, &x, 8); break;
    }
}

ALWAYS_INLINE uint64_t mask_of(unsigned w) { return w == 8 ? ~0ull : (1ull << (8 * w)) - 1; }

ALWAYS_INLINE uint64_t key_of(uint64_t x, unsigned w, bool fl)
{
    if (!fl)
        return x;
    uint64_t sign = 1ull << (8 * w - 1), neg = 0 - (x >> (8 * w - 1));
    return x ^ ((neg & mask_of(w)) | sign);
}

ALWAYS_INLINE uint64_t key_inv(uint64_t k, unsigned w, bool fl)
{
    if (!fl)
        return k;
    uint64_t sign = 1ull << (8 * w - 1), pos = (k >> (8 * w - 1)) - 1; /* all ones if negative */
    return k ^ ((pos & (mask_of(w) ^ sign)) | sign);
}

ALWAYS_INLINE uint64_t zz_enc(uint64_t d, unsigned w)
{
    unsigned sh = 64 - 8 * w;
    int64_t s = (int64_t)(d << sh) >> sh;
    return (((uint64_t)s << 1) ^ (uint64_t)(s >> 63)) & mask_of(w);
}

ALWAYS_INLINE uint64_t zz_dec(uint64_t v, unsigned w)
{
    return ((v >> 1) ^ (0 - (v & 1))) & mask_of(w);
}

ALWAYS_INLINE uint64_t value_of(uint64_t p, uint64_t c, unsigned w, bool fl, int xf)
{
    if (xf == SDELTA_XFORM_XOR)
        return p ^ c;
    return zz_enc((key_of(c, w, fl) - key_of(p, w, fl)) & mask_of(w), w);
}

ALWAYS_INLINE uint64_t apply_value(uint64_t p, uint64_t v, unsigned w, bool fl, int xf)
{
    if (xf == SDELTA_XFORM_XOR)
        return p ^ v;
    return key_inv((key_of(p, w, fl) + zz_dec(v, w)) & mask_of(w), w, fl);
}

#define DISPATCH_W(w, fl, xf, CALL)                                                                \
    do {                                                                                           \
        if ((xf) == SDELTA_XFORM_XOR) {                                                            \
            switch (w) {                                                                           \
            case 1: CALL(1, fl, SDELTA_XFORM_XOR); break;                                          \
            case 2: CALL(2, fl, SDELTA_XFORM_XOR); break;                                          \
            case 4: CALL(4, fl, SDELTA_XFORM_XOR); break;                                          \
            default: CALL(8, fl, SDELTA_XFORM_XOR); break;                                         \
            }                                                                                      \
        } else if (fl) {                                                                           \
            switch (w) {                                                                           \
            case 1: CALL(1, true, SDELTA_XFORM_SUB); break;                                        \
            case 2: CALL(2, true, SDELTA_XFORM_SUB); break;                                        \
            case 4: CALL(4, true, SDELTA_XFORM_SUB); break;                                        \
            default: CALL(8, true, SDELTA_XFORM_SUB); break;                                       \
            }                                                                                      \
        } else {                                                                                   \
            switch (w) {                                                                           \
            case 1: CALL(1, false, SDELTA_XFORM_SUB); break;                                       \
            case 2: CALL(2, false, SDELTA_XFORM_SUB); break;                                       \
            case 4: CALL(4, false, SDELTA_XFORM_SUB); break;                                       \
            default: CALL(8, false, SDELTA_XFORM_SUB); break;                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

ALWAYS_INLINE uint64_t count_diff_w(const uint8_t *a, const uint8_t *b, size_t m, unsigned w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m; i++)
        n += (a ? ld(a, i, w) : 0) != ld(b, i, w);
    return n;
}

static inline uint64_t count_diff(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b)
{
    switch (sh->width) {
    case 1: return count_diff_w(a, b, sh->m, 1);
    case 2: return count_diff_w(a, b, sh->m, 2);
    case 4: return count_diff_w(a, b, sh->m, 4);
    default: return count_diff_w(a, b, sh->m, 8);
    }
}

/* Grows the per-element scratch arrays to m elements; -1 when out of memory. */
int sdelta_chunk_scratch_grow(SdChunkScratch *s, size_t m);

#endif
