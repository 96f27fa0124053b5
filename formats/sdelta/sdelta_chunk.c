/* Chunk scratch memory and change counting, shared by sdelta_chunk_encode.c and
 * sdelta_chunk_decode.c (the chunk codec: sdelta_chunk.h; the bytes: docs/sdelta-format.md). */
#include "formats/sdelta/sdelta_chunk.h"

#include <stdlib.h>
#include <string.h>

#include "formats/sdelta/sdelta_chunk_impl.h"

/* ---- scratch ---- */

void sdelta_chunk_scratch_free(SdChunkScratch *s)
{
    free(s->pos);
    free(s->tok_a);
    free(s->tok_b);
    free(s->planes);
    free(s->dec_a); /* dec_b lies in the same block */
    free(s->bits_g);
    free(s->bits_v);
    memset(s, 0, sizeof *s);
}

int sdelta_chunk_scratch_grow(SdChunkScratch *s, size_t m)
{
    if (!s->dec_a) {
        /* one block, so that a 2-table decoder can index both tables from dec_a */
        s->dec_a = malloc(2 * sizeof *s->dec_a);
        if (!s->dec_a)
            return -1;
        s->dec_b = s->dec_a + 1;
    }
    if (m <= s->cap)
        return 0;
    free(s->pos);
    free(s->tok_a);
    free(s->tok_b);
    free(s->planes);
    s->pos = malloc((m + 1) * sizeof *s->pos);
    s->tok_a = malloc(2 * m + 2); /* sparse: gap and value tokens interleaved */
    s->tok_b = malloc(m + 1);
    s->planes = malloc(m * 8 + 1);
    if (!s->pos || !s->tok_a || !s->tok_b || !s->planes) {
        s->cap = 0;
        return -1;
    }
    s->cap = m;
    return 0;
}

uint64_t sdelta_chunk_count_changes(const SdChunkShape *sh, const uint8_t *parent,
                                    const uint8_t *child)
{
    return count_diff(sh, parent, child);
}
