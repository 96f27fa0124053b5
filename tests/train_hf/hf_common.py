"""Shared by the train_hf tests: a small byte-level BPE tokenizer trained with `tokenizers`
(Qwen2's pre-tokenizer) and tiny random Hugging Face models written with `transformers`."""
import json
import os
import random

QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(vocab_size=400, seed=3):
    """A Qwen2-style tokenizer trained on task-like text."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    rng = random.Random(seed)
    lines = []
    for _ in range(2000):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice("+*")
        lines.append(f"What is {a}{op}{b}? Put the final answer in \\boxed{{}}.\n"
                     f"\\boxed{{{a + b if op == '+' else a * b}}}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def save_tokenizer(tok, folder):
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "tokenizer_class": "Qwen2Tokenizer"}, f)


def tiny_model(arch, vocab, seed, tied=False, randomize=True, max_pos=256):
    """A tiny random Qwen2ForCausalLM or LlamaForCausalLM (float32). With randomize, every
    parameter (norm weights and biases too) is random, so that each term matters."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    kw = dict(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_pos,
              rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=tied,
              initializer_range=0.2, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**kw))
    else:
        model = LlamaForCausalLM(LlamaConfig(**kw))
    if randomize:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
                elif name.endswith(".bias"):
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model.float().eval()
