/* Unit tests of formats/dtype_encode: float32 -> BF16 / F16 with round to nearest even. Fixed
 * cases (ties to even, the largest finite values and overflow to Inf, subnormals, signed zeros,
 * Inf, NaN kept NaN and quiet), then every 65537th float32 bit pattern and one million random
 * ones checked against dtype_round (an independent double-based rounding) decoded back.
 * Exit status: 0 pass, 1 fail. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "formats/dtype_convert.h"
#include "formats/dtype_encode.h"
#include "formats/dtype_round.h"

static int failures;

static float from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void expect(const char *what, uint32_t in, uint16_t got, uint16_t want)
{
    if (got != want) {
        fprintf(stderr, "%s(0x%08x = %g): got 0x%04x, want 0x%04x\n", what, in,
                (double)from_bits(in), got, want);
        failures++;
    }
}

#define BF(in, want) expect("bf16", in, dtype_f32_to_bf16(from_bits(in)), want)
#define HF(in, want) expect("f16", in, dtype_f32_to_f16(from_bits(in)), want)

static void fixed_cases(void)
{
    BF(0x3f800000u, 0x3f80);  /* 1 */
    BF(0x3f808000u, 0x3f80);  /* tie, even below */
    BF(0x3f818000u, 0x3f82);  /* tie, odd: up */
    BF(0x3f808001u, 0x3f81);  /* above the tie */
    BF(0x3f807fffu, 0x3f80);  /* below the tie */
    BF(0xbf818000u, 0xbf82);  /* negative tie */
    BF(0x7f7f7fffu, 0x7f7f);  /* stays finite */
    BF(0x7f7f8000u, 0x7f80);  /* tie at the top, odd: overflows to Inf */
    BF(0x7f7fffffu, 0x7f80);  /* FLT_MAX -> Inf */
    BF(0xff7fffffu, 0xff80);
    BF(0x7f800000u, 0x7f80);  /* Inf */
    BF(0xff800000u, 0xff80);
    BF(0x7fc00000u, 0x7fc0);  /* quiet NaN */
    BF(0x7f800001u, 0x7fc0);  /* signaling NaN with low payload: NaN, not Inf */
    BF(0xff800001u, 0xffc0);
    BF(0x7fa00000u, 0x7fe0);  /* payload kept, quiet bit set */
    BF(0x00000000u, 0x0000);
    BF(0x80000000u, 0x8000);
    BF(0x00000001u, 0x0000);  /* smallest subnormal */
    BF(0x00008000u, 0x0000);  /* subnormal tie, even */
    BF(0x00018000u, 0x0002);  /* subnormal tie, odd: up */
    BF(0x007fffffu, 0x0080);  /* largest subnormal rounds to the smallest normal */

    HF(0x3f800000u, 0x3c00);  /* 1 */
    HF(0x3f801000u, 0x3c00);  /* 1 + 2^-11: tie, even */
    HF(0x3f803000u, 0x3c02);  /* 1 + 3*2^-11: tie, odd: up */
    HF(0x3f801001u, 0x3c01);
    HF(0x477fe000u, 0x7bff);  /* 65504, the largest finite */
    HF(0x477fefffu, 0x7bff);  /* just below 65520 */
    HF(0x477ff000u, 0x7c00);  /* 65520: tie, odd: Inf */
    HF(0x501502f9u, 0x7c00);  /* 1e10 */
    HF(0xc77ff000u, 0xfc00);
    HF(0x7f800000u, 0x7c00);
    HF(0xff800000u, 0xfc00);
    HF(0x7fc00000u, 0x7e00);
    HF(0x7f800001u, 0x7e00);
    HF(0xffc00000u, 0xfe00);
    HF(0x80000000u, 0x8000);
    HF(0x38800000u, 0x0400);  /* 2^-14, the smallest normal */
    HF(0x387fc000u, 0x03ff);  /* largest subnormal */
    HF(0x387fe000u, 0x0400);  /* tie between it and 2^-14: up (odd) */
    HF(0x33800000u, 0x0001);  /* 2^-24, the smallest subnormal */
    HF(0x33000000u, 0x0000);  /* 2^-25: tie, even: 0 */
    HF(0x33000001u, 0x0001);  /* just above: 1 */
    HF(0x33c00000u, 0x0002);  /* 3*2^-25: tie between 1 and 2: 2 */
    HF(0x34200000u, 0x0002);  /* 5*2^-25: tie between 2 and 3: 2 */
    HF(0xb3800000u, 0x8001);
    HF(0x2edbe6ffu, 0x0000);  /* 1e-10 */
    HF(0x00000001u, 0x0000);  /* float32 subnormal */
}

/* The encoding decoded back must equal dtype_round's double rounding; NaN must stay NaN. */
static void check_against_round(uint32_t b)
{
    float x = from_bits(b);
    uint16_t hb = dtype_f32_to_bf16(x), hh = dtype_f32_to_f16(x);
    double db = ss_bf16_to_double(hb), dh = ss_f16_to_double(hh);
    if (isnan(x)) {
        if (!isnan(db) || !isnan(dh) || !(hb & 0x40) || !(hh & 0x200) ||
            (hb >> 15) != (b >> 31) || (hh >> 15) != (b >> 31)) {
            fprintf(stderr, "NaN 0x%08x -> bf16 0x%04x f16 0x%04x\n", b, hb, hh);
            failures++;
        }
        return;
    }
    double wb = dtype_round(DT_BF16, (double)x), wh = dtype_round(DT_F16, (double)x);
    /* compare values, and the sign of zeros */
    if (db != wb || !signbit(db) != !signbit(x)) {
        fprintf(stderr, "bf16(0x%08x = %g) = %g, want %g\n", b, (double)x, db, wb);
        failures++;
    }
    if (dh != wh || !signbit(dh) != !signbit(x)) {
        fprintf(stderr, "f16(0x%08x = %g) = %g, want %g\n", b, (double)x, dh, wh);
        failures++;
    }
}

static void arrays(void)
{
    float src[5] = {1.0f, -2.5f, 65520.0f, from_bits(0x3f808000u), NAN};
    uint16_t b[5], h[5];
    dtype_encode_bf16(src, b, 5);
    dtype_encode_f16(src, h, 5);
    for (int i = 0; i < 5; i++) {
        expect("bf16 array", i, b[i], dtype_f32_to_bf16(src[i]));
        expect("f16 array", i, h[i], dtype_f32_to_f16(src[i]));
    }
}

int main(void)
{
    fixed_cases();
    arrays();
    for (uint64_t b = 0; b <= 0xffffffffu && failures < 20; b += 65537)
        check_against_round((uint32_t)b);
    uint64_t z = 0x123456789abcdefull;
    for (int i = 0; i < 1000000 && failures < 20; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t b = (uint32_t)(z >> 32);
        check_against_round(b);
        /* near the rounding boundaries: low bits at and around a half */
        check_against_round((b & ~0xffffu) | 0x8000u);
        check_against_round((b & ~0x1fffu) | 0x1000u);
    }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("dtype_encode: ok\n");
    return 0;
}
