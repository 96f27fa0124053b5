/* The Hugging Face byte-level BPE tokenizer of Qwen2 / Qwen3, Llama 3 and GPT-2 style models,
 * read from a `tokenizers` tokenizer.json, giving the ids `tokenizers` gives
 * (Tokenizer.encode(text, add_special_tokens=False)) and decoding them back to bytes.
 *
 * What tokenizer.json may hold (anything else is refused with SS_EINPUT naming the field):
 *   model          type "BPE": vocab {token: id}, merges as "a b" strings or [a, b] pairs (rank =
 *                  position), ignore_merges (a pre-token that is itself in the vocab is one id,
 *                  as Llama 3), no dropout, continuing_subword_prefix, end_of_word_suffix or
 *                  byte_fallback
 *   normalizer     null, or NFC (taken as the identity: exact for text already in NFC, which
 *                  includes all ASCII text such as the trainer's prompts)
 *   pre_tokenizer  ByteLevel with use_regex true (the GPT-2 split pattern), or a Sequence of a
 *                  Split (a Regex pattern, behavior Isolated, not inverted) and ByteLevel with
 *                  use_regex false; add_prefix_space false. The Split pattern must be one of
 *                  GPT-2's, Qwen2's (\p{N}: digits one by one) or Llama 3's (\p{N}{1,3}); their
 *                  regexes are implemented by hand (bpe_tokenizer.c) with Unicode classes
 *                  generated from Python's unicodedata (train/unicode_tables.c)
 *   added_tokens   matched in the raw text before pre-tokenization, leftmost then longest (their
 *                  lstrip / rstrip / single_word flags are ignored: false in these models)
 *   decoder        null or ByteLevel; post_processor: ignored (encode adds no special tokens)
 * Encoding: the text is split at added tokens; each piece is split by the pattern into
 * pre-tokens; each pre-token's bytes become byte-level symbols (GPT-2's bytes_to_unicode) and are
 * merged pair by pair, lowest merge rank first (leftmost among equal ranks), until no merge
 * applies. Merge ranks live in a hash map, so encoding is linear in the text for short words.
 * Decoding: each id's token string mapped back through bytes_to_unicode (a token with a character
 * outside that map, e.g. an added token, gives its own UTF-8 bytes).
 *
 * Functions returning int return 0 or a negative SS_E* code and fill err (formats/ss_error.h). */
#ifndef SS_TRAIN_BPE_TOKENIZER_H
#define SS_TRAIN_BPE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"

typedef struct BpeTokenizer BpeTokenizer;

/* Reads a tokenizer.json. SS_EINPUT when unreadable or unsupported (the message says which
 * field), SS_EOUTPUT when out of memory. */
int bpe_open(const char *path, BpeTokenizer **out, SsError *err);

/* Reads DIR/tokenizer.json, and the BOS and EOS tokens from DIR/tokenizer_config.json
 * (bos_token, eos_token: a string or {"content": ...}; null or absent: none) or else from
 * DIR/config.json (bos_token_id, eos_token_id). */
int bpe_open_dir(const char *dir, BpeTokenizer **out, SsError *err);

void bpe_free(BpeTokenizer *t);

/* 1 + the largest id of the vocabulary and the added tokens. */
int bpe_vocab_size(const BpeTokenizer *t);

/* The BOS / EOS id found by bpe_open_dir, or -1 when none. */
int32_t bpe_bos(const BpeTokenizer *t);
int32_t bpe_eos(const BpeTokenizer *t);

/* The id of a token given as its tokenizer.json string (an added token's content, or a vocab
 * entry in byte-level form), or -1. */
int32_t bpe_token_id(const BpeTokenizer *t, const char *token);

/* Encodes len bytes of text into ids[0..cap) (no special tokens added). Returns the count, or -1
 * when the ids do not fit in cap or a byte has no vocabulary symbol. Invalid UTF-8 is encoded
 * byte by byte (each invalid byte a punctuation-like character). */
int bpe_encode(const BpeTokenizer *t, const char *text, size_t len, int32_t *ids, int cap);

/* Decodes n ids into text[0..cap) (bytes, NUL-terminated, truncated to cap-1); ids out of range
 * are skipped. Returns the full decoded length (which may exceed cap-1). */
size_t bpe_decode(const BpeTokenizer *t, const int32_t *ids, int n, char *text, size_t cap);

/* ---- the generated Unicode classes (train/unicode_tables.c) ---- */

enum { BPE_CLASS_OTHER = 0, BPE_CLASS_L = 1, BPE_CLASS_N = 2, BPE_CLASS_SPACE = 3 };

/* Sorted disjoint ranges {first, last | class << 24} of the code points not BPE_CLASS_OTHER. */
extern const uint32_t bpe_unicode_ranges[][2];
extern const size_t bpe_unicode_nranges;

/* The class of code point cp. */
int bpe_char_class(uint32_t cp);

#endif
