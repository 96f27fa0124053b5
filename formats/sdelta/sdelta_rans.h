/* A static, order-0 rANS entropy coder for byte tokens (ryg_rans style: 32-bit state in
 * [2^15, 2^31), 16-bit renormalization, 12-bit probabilities, 1 to 32 interleaved lanes).
 * A table is built from symbol counts, stored either inline in a chunk or shared in the header,
 * and drives both encoding and decoding. Private to formats/sdelta/. */
#ifndef SDELTA_RANS_H
#define SDELTA_RANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/sdelta/sdelta_format.h"

#define SDELTA_RANS_MAX_LANES 32u
/* Lanes of the split mode's streams: four groups of 8, decoded with AVX2 where available. */
#define SDELTA_RANS_SPLIT_LANES 32u

/* A normalized frequency table: freq[s] > 0 for every symbol that may occur, sum 4096. */
typedef struct SdRansTable {
    uint16_t freq[SDELTA_NSYMS];
    uint16_t start[SDELTA_NSYMS];
    uint16_t nsyms; /* symbols with freq > 0 */
} SdRansTable;

/* The decoder's slot table: slot -> symbol (8 bits), freq - 1 (12 bits), slot - start (12 bits). */
typedef struct SdRansDecTable {
    uint32_t slot[SDELTA_RANS_PROB_SCALE];
} SdRansDecTable;

/* Builds the table from counts (u64 each); false when every count is zero. */
bool sdelta_rans_build(SdRansTable *t, const uint64_t counts[SDELTA_NSYMS]);

/* Bits needed to code the counted symbols with t; +infinity when a counted symbol has freq 0. */
double sdelta_rans_cost_bits(const SdRansTable *t, const uint64_t counts[SDELTA_NSYMS]);

/* Serialized size of a table in bytes, and its serialization: varint count of present symbols,
 * then per present symbol (ascending) varint(symbol gap) and varint(freq - 1). */
size_t sdelta_rans_table_bytes(const SdRansTable *t);
void sdelta_rans_table_write(SdBuf *out, const SdRansTable *t);
/* Reads and validates a table (symbols < 256, ascending, sum 4096); false on malformed bytes. */
bool sdelta_rans_table_read(SdReader *r, SdRansTable *t);

void sdelta_rans_dectable_build(SdRansDecTable *d, const SdRansTable *t);

/* Appends one coded stream of n symbols: u8 lanes, varint byte count, the 16-bit words.
 * Symbol i is coded with tables[i % ntables] (ntables 1 or 2; with 2, lanes must be 1 or even)
 * and must have freq > 0 there. Returns false on allocation failure. */
bool sdelta_rans_encode(SdBuf *out, const SdRansTable *const *tables, unsigned ntables,
                        const uint8_t *syms, size_t n, unsigned lanes);

/* Decodes one stream of n symbols written by sdelta_rans_encode with the same tables. Returns
 * false when the bytes are malformed: bad lane count, overrun, or final states or leftover words
 * that do not match. */
bool sdelta_rans_decode(SdReader *r, const SdRansDecTable *const *d, unsigned ntables,
                        uint8_t *syms, size_t n);

/* Incremental decoding of one stream: begin reads the stream header and initial states; each
 * block call decodes the next n symbols; end checks that the stream was used up exactly. */
typedef struct SdRansDec {
    uint32_t x[SDELTA_RANS_MAX_LANES];
    const uint8_t *in, *end;
    unsigned lanes, ntables;
    const SdRansDecTable *d[2];
    size_t done; /* symbols decoded so far */
} SdRansDec;

bool sdelta_rans_dec_begin(SdReader *r, SdRansDec *s, const SdRansDecTable *const *d,
                           unsigned ntables);
bool sdelta_rans_dec_block(SdRansDec *s, uint8_t *syms, size_t n);
bool sdelta_rans_dec_end(const SdRansDec *s);

/* The number of bytes sdelta_rans_encode would emit for `bits` of coded information. */
static inline double sdelta_rans_stream_bytes(double bits, size_t n, unsigned lanes)
{
    (void)n;
    return 1.0 + 3.0 + 4.0 * lanes + bits / 8.0;
}

/* Lanes the encoder uses for n symbols: 1 for short streams, 4 for medium ones, 32 (the AVX2
 * paths: about 2.5x faster to decode than 4 scalar lanes) from 4096 symbols on, where the 128
 * bytes of initial states cost little. */
static inline unsigned sdelta_rans_lanes_for(size_t n)
{
    return n < 256 ? 1u : n < 4096 ? 4u : SDELTA_RANS_SPLIT_LANES;
}

#endif
