/* The trainer's character-level tokenizer (train/tasks.h): ids 0 PAD, 1 BOS, 2 EOS, then one id
 * per character of TOK_ALPHABET in order. */
#include "train/tasks.h"

#include <string.h>

#define TOK_ALPHABET "0123456789+-*()/=,>: "
#define TOK_FIRST_CHAR 3

int tok_vocab_size(void)
{
    return TOK_FIRST_CHAR + (int)(sizeof TOK_ALPHABET - 1);
}

/* The id of character c, or -1 when c is outside the alphabet (NUL included). */
static int tok_char_id(char c)
{
    if (c == '\0')
        return -1;
    const char *at = strchr(TOK_ALPHABET, c);
    return at ? TOK_FIRST_CHAR + (int)(at - TOK_ALPHABET) : -1;
}

int tok_encode(const char *text, int32_t *ids, int cap)
{
    if (!text)
        return -1;
    int n = 0;
    for (const char *c = text; *c; c++) {
        int id = tok_char_id(*c);
        if (id < 0 || n >= cap)
            return -1;
        ids[n++] = id;
    }
    return n;
}

size_t tok_decode(const int32_t *ids, int n, char *text, size_t cap)
{
    if (cap == 0)
        return 0;
    size_t len = 0;
    for (int i = 0; i < n && len + 1 < cap; i++) {
        int32_t id = ids[i];
        if (id == TOK_EOS || id == TOK_PAD)
            break;
        if (id == TOK_BOS)
            continue;
        text[len++] = id >= TOK_FIRST_CHAR && id < tok_vocab_size()
                          ? TOK_ALPHABET[id - TOK_FIRST_CHAR] : '?';
    }
    text[len] = '\0';
    return len;
}
