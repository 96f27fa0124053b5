"""The BPE tokenizer (train/bpe_tokenizer.h) against Hugging Face `tokenizers` (PyPI): byte-level
BPE tokenizers trained here with the pre-tokenizers of Qwen2 (Split with Qwen2's pattern, digits
one by one), Llama 3 (Split with \\p{N}{1,3}, ignore_merges) and GPT-2 (ByteLevel use_regex), each
saved as tokenizer.json; bpe_dump must give the ids `tokenizers` gives (encode without special
tokens) on sample strings with Unicode (CJK, accents, combining marks, emoji), digits, whitespace
runs, tabs, CR/LF, contractions and special tokens, and on random strings over such an alphabet;
decoding must give the text back. Merges saved as [a, b] pairs (with Qwen2's empty
continuing_subword_prefix / end_of_word_suffix and NFC normalizer) give the same ids, and BOS /
EOS come from tokenizer_config.json.
Usage: test_bpe.py BPE_DUMP. Exit 0 pass, 1 fail, 77 skip (no `tokenizers`)."""
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
except ImportError as e:
    print(f"skip: the `tokenizers` package (PyPI) is not installed: {e}")
    sys.exit(77)

QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PAT = QWEN2_PAT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

SAMPLES = [
    "Hello world", "What is 123+45? Put the final answer in \\boxed{}.", "\\boxed{168}",
    "1234567890 12 345 6789", "x=3.14159, y=-2.5e10", "I'm you're they've he'll she'd IT'S WE'RE",
    "naïve café résumé Ångström façade", "e\u0301 a\u0300 combining", "日本語のテキスト 中文字符 한국어",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧", "tabs\tand\t\ttabs", "lines\nand\n\nmore\r\nwindows\r\n",
    "   leading spaces", "trailing spaces   ", "a  b   c    d", " \n \n  x", "\n\n\n",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text", "<|endoftext|><|endoftext|>", "<|im_end", "",
    "def f(x):\n    return x ** 2  # square\n", "((1+2)*3)/4-5", "\u00a0nbsp\u2003em space\u3000ideo",
    "١٢٣ Arabic-Indic digits ⅫⅣ roman ½ ¾ fractions ²³", "'s 's 'S 'll 'LL 'x", "Ünïcödé ÀÉÎÕÜ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters", "mixed123abc456def", "   \t  \n", "a\u200bzero width", "x" * 300,
]

ALPHABET = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
            list(" \t\n\r" + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + [" "] * 10 +
            ["'s", "'t", "'re", "'LL", "é", "ü", "ß", "日", "本", "語", "😀", "👍🏽", "\u0301", "١",
             "½", "\u00a0", "\u3000", "Ж", "ж", "Ω", "<|endoftext|>", "<|im_start|>", "  ", "\n\n"])


def corpus(rng):
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "answer", "boxed",
             "what", "is", "Put", "final", "in", "number", "日本", "語", "café", "naïve", "😀",
             "I'm", "don't", "you're", "hello", "world", "\\boxed{", "}", "+", "=", "?"]
    lines = []
    for _ in range(3000):
        k = rng.randint(1, 12)
        parts = []
        for _ in range(k):
            r = rng.random()
            if r < 0.2:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 6))))
            elif r < 0.25:
                parts.append(rng.choice([" ", "  ", "\t", "\n", "\n\n", "\r\n"]))
            else:
                parts.append(rng.choice(words))
        lines.append(" ".join(parts))
    return lines


def train(kind, lines):
    tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        pat = QWEN2_PAT if kind == "qwen2" else LLAMA3_PAT
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIALS,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             show_progress=False)
    tok.train_from_iterator(lines, tr)
    return tok


def main():
    dump = sys.argv[1]
    rng = random.Random(7)
    lines = corpus(rng)
    strings = list(SAMPLES)
    for _ in range(400):
        strings.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40))))
    fails = 0
    with tempfile.TemporaryDirectory(prefix="test-bpe-") as tmp:
        sp = os.path.join(tmp, "strings.json")
        with open(sp, "w") as f:
            json.dump(strings, f)
        for kind in ("qwen2", "llama3", "gpt2"):
            tok = train(kind, lines)
            d = os.path.join(tmp, kind)
            os.makedirs(d)
            tp = os.path.join(d, "tokenizer.json")
            tok.save(tp)
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump({"bos_token": None, "eos_token": "<|endoftext|>"}, f)
            want = [tok.encode(s, add_special_tokens=False).ids for s in strings]
            variants = [("strings", d)]
            j = json.load(open(tp))
            merges = j["model"]["merges"]
            if merges and isinstance(merges[0], str):  # the [a, b] pair form of newer tokenizers
                j["model"]["merges"] = [m.split(" ") for m in merges]
                # and the fields as Qwen2's tokenizer.json has them
                j["model"].update(continuing_subword_prefix="", end_of_word_suffix="",
                                  dropout=None, byte_fallback=False)
                j["normalizer"] = {"type": "NFC"}
                pp = os.path.join(tmp, kind + "-pairs.json")
                with open(pp, "w") as f:
                    json.dump(j, f, ensure_ascii=False)
                variants.append(("pairs", pp))
            for label, path in variants:
                op = os.path.join(tmp, f"{kind}-{label}.out.json")
                r = subprocess.run([dump, path, sp, op], capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL {kind} {label}: bpe_dump exited {r.returncode}: {r.stderr}")
                    fails += 1
                    continue
                got = json.load(open(op))
                bad = 0
                for s, w, g, dec in zip(strings, want, got["ids"], got["decoded"]):
                    if w != g or dec != s:
                        bad += 1
                        if bad <= 5:
                            print(f"FAIL {kind} {label}: {s!r}\n  tokenizers {w}\n  ours       {g}"
                                  f"\n  tokens {[tok.id_to_token(i) for i in w]}"
                                  f"\n  ours   {[tok.id_to_token(i) for i in g]}\n  decoded {dec!r}")
                    elif tok.decode(g, skip_special_tokens=False) != s:
                        bad += 1
                        print(f"FAIL {kind} {label}: tokenizers decodes {s!r} differently")
                fails += bad
                if label == "strings":
                    eos = tok.token_to_id("<|endoftext|>")
                    if got["eos"] != eos or got["bos"] != -1 or \
                            got["vocab_size"] != tok.get_vocab_size(with_added_tokens=True):
                        print(f"FAIL {kind}: eos {got['eos']} (want {eos}), bos {got['bos']}, "
                              f"vocab {got['vocab_size']}")
                        fails += 1
                print(f"{kind} ({label}): {len(strings) - bad}/{len(strings)} strings give "
                      f"tokenizers' ids and decode back")
    if fails:
        print(f"{fails} failures")
        return 1
    print("bpe: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
