/* bpe_dump: the C side of test_bpe.py.
 *   bpe_dump TOKENIZER STRINGS OUT
 * TOKENIZER is a tokenizer.json or a model folder (bpe_open_dir); STRINGS a JSON array of strings.
 * Writes OUT: {"ids": [[id, ...], ...], "decoded": [string, ...], "vocab_size": N, "bos": id,
 * "eos": id}, decoded being bpe_decode of the ids (as a JSON string; invalid UTF-8 is an error).
 * Exit status: 0, or the SS_E* exit status with the message on stderr. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/bpe_tokenizer.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bpe_dump TOKENIZER STRINGS OUT\n");
        return 1;
    }
    SsError err = {0};
    BpeTokenizer *t;
    size_t pl = strlen(argv[1]);
    int rc = pl > 5 && strcmp(argv[1] + pl - 5, ".json") == 0 ? bpe_open(argv[1], &t, &err)
                                                               : bpe_open_dir(argv[1], &t, &err);
    if (rc) {
        fprintf(stderr, "bpe_dump: %s\n", err.msg);
        return ss_exit_status(rc);
    }
    json_error_t je;
    json_t *in = json_load_file(argv[2], 0, &je);
    if (!json_is_array(in)) {
        fprintf(stderr, "bpe_dump: %s: %s\n", argv[2], je.text);
        return 2;
    }
    json_t *ids = json_array(), *dec = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) {
        const char *text = json_string_value(s);
        size_t len = json_string_length(s);
        int cap = (int)len + 16;
        int32_t *buf = malloc((size_t)cap * sizeof *buf);
        int n = bpe_encode(t, text, len, buf, cap);
        if (n < 0) {
            fprintf(stderr, "bpe_dump: string %zu cannot be encoded\n", i);
            return 2;
        }
        json_t *row = json_array();
        for (int k = 0; k < n; k++)
            json_array_append_new(row, json_integer(buf[k]));
        json_array_append_new(ids, row);
        size_t need = bpe_decode(t, buf, n, NULL, 0);
        char *text2 = malloc(need + 1);
        bpe_decode(t, buf, n, text2, need + 1);
        json_t *js = json_stringn(text2, need);
        if (!js) {
            fprintf(stderr, "bpe_dump: string %zu decodes to invalid UTF-8\n", i);
            return 2;
        }
        json_array_append_new(dec, js);
        free(text2);
        free(buf);
    }
    json_t *out = json_pack("{s:o, s:o, s:i, s:i, s:i}", "ids", ids, "decoded", dec, "vocab_size",
                            bpe_vocab_size(t), "bos", bpe_bos(t), "eos", bpe_eos(t));
    rc = json_dump_file(out, argv[3], JSON_COMPACT) == 0 ? 0 : 4;
    json_decref(out);
    json_decref(in);
    bpe_free(t);
    return rc;
}
