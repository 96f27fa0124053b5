"""grpo_step_torch.py: grpo-train's GRPO step in PyTorch eager, the baseline of bench/grpo_bench.sh.

The same step as `grpo-train grpo` (docs/grpo-train.md) with its defaults, written the way a
competent PyTorch user would write it: an nn.Module of nn.Parameters (Hugging Face's Qwen3 layout:
separate q/k/v/gate/up projections), autograd, torch.optim.SGD or AdamW, and for sampling a
preallocated KV cache with batched decoding (left-padded prompts, one prefill forward, then one
forward of all P*G sequences per new token; finished sequences are masked, decoding stops when all
are done), under torch.no_grad. Per step:

  1. P prompts x G samples, temperature 1, at most --max-new tokens, stopping after EOS
     (--ignore-eos: always exactly --max-new tokens, the fixed-length comparison);
  2. rewards (the add:N verifier: the response up to EOS must be the sum) and group-normalized
     advantages (r - mean) / (std + 1e-6), unbiased std, 0 for all-equal groups;
  3. under no_grad, the reference policy's log-probabilities (the frozen base);
  4. one forward with autograd; since there is one epoch of one mini-batch, the sampling policy's
     log-probabilities are that forward's, detached (grpo-train does the same: it reuses the
     forward of the sampling-policy log-probabilities for the update), so ratio = 1;
  5. the clipped surrogate (eps 0.2) plus beta * k3 KL to the reference, token-mean, backward,
     clip_grad_norm_(1.0), one optimizer step.

The model and config come from a grpo-train sft folder (config.json + model.safetensors, bf16
loaded as float32). The prompts are not grpo-train's problems but fresh add:N problems with the
same distribution (digit count uniform in 1..N, then the number uniform among those digits), so
prompt lengths have the same distribution; with the same base weights the response lengths then
have the same distribution too (the same policy), though not the same values.

Prints one JSON object: median step time, sampling time, tokens/s (prompt + response tokens per
step, BOS included, as grpo-train counts them), CPU seconds per step (process time, all threads)
and the mean response length, over --steps steps after --warmup steps.

usage: PYTHONPATH=<dir with safetensors> python3 grpo_step_torch.py --model DIR [--threads N]
         [--prompts 8] [--group 8] [--max-new N] [--task add:3] [--steps 15] [--warmup 3]
         [--optimizer sgd|adamw] [--lr X] [--kl-coef 0.001] [--ignore-eos] [--seed 1]
"""
import argparse
import json
import math
import os
import random
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

PAD, BOS, EOS = 0, 1, 2
ALPHABET = "0123456789+-*()/=,>: "


def encode(text):
    return [3 + ALPHABET.index(c) for c in text]


def decode(ids):
    out = []
    for i in ids:
        if i in (EOS, PAD):
            break
        if i >= 3:
            out.append(ALPHABET[i - 3])
    return "".join(out)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, self.Q, self.K, self.D = c["hidden_size"], c["num_attention_heads"], \
            c["num_key_value_heads"], c["head_dim"]
        self.q_proj = nn.Linear(H, self.Q * self.D, bias=False)
        self.k_proj = nn.Linear(H, self.K * self.D, bias=False)
        self.v_proj = nn.Linear(H, self.K * self.D, bias=False)
        self.o_proj = nn.Linear(self.Q * self.D, H, bias=False)
        self.q_norm = RMSNorm(self.D, c["rms_norm_eps"])
        self.k_norm = RMSNorm(self.D, c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask, cache=None, start=0):
        """x (B, S, H); cos, sin (B or 1, 1, S, D); mask (B or 1, 1, S, S_keys) additive.
        With cache = (kc, vc) of (B, K, Tmax, D), the S new keys and values are written at
        start.. and attention reads keys 0..start+S-1."""
        B, S, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, S, self.Q, self.D)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(B, S, self.K, self.D)).transpose(1, 2)
        v = self.v_proj(x).view(B, S, self.K, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            kc, vc = cache
            kc[:, :, start:start + S] = k
            vc[:, :, start:start + S] = v
            k, v = kc[:, :, :start + S], vc[:, :, :start + S]
        # grouped-query attention without copying k and v: (B, K, group*S, D)
        g = self.Q // self.K
        qg = q.reshape(B, self.K, g * S, self.D)
        scores = torch.matmul(qg, k.transpose(2, 3)) / math.sqrt(self.D)
        scores = scores.view(B, self.K, g, S, -1) + mask.unsqueeze(2)
        probs = torch.softmax(scores, dim=-1).view(B, self.K, g * S, -1)
        out = torch.matmul(probs, v).view(B, self.Q, S, self.D).transpose(1, 2)
        return self.o_proj(out.reshape(B, S, self.Q * self.D))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I, eps = c["hidden_size"], c["intermediate_size"], c["rms_norm_eps"]
        self.input_layernorm = RMSNorm(H, eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(H, eps)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(H, I, bias=False)
        self.mlp.up_proj = nn.Linear(H, I, bias=False)
        self.mlp.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x, cos, sin, mask, cache=None, start=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start)
        h = self.post_attention_layernorm(x)
        return x + self.mlp.down_proj(F.silu(self.mlp.gate_proj(h)) * self.mlp.up_proj(h))


class Qwen3(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.model.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.model.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        if not c.get("tie_word_embeddings", True):
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        D = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        f = torch.outer(torch.arange(c["max_position_embeddings"], dtype=torch.float64), inv)
        emb = torch.cat((f, f), dim=-1)
        self.register_buffer("cos", emb.cos().float(), persistent=False)
        self.register_buffer("sin", emb.sin().float(), persistent=False)

    def head(self):
        return self.lm_head.weight if hasattr(self, "lm_head") else self.model.embed_tokens.weight

    def forward(self, tokens, pos, mask, caches=None, start=0):
        """tokens, pos (B, S); mask additive (B or 1, 1, S, keys); logits (B, S, V)."""
        x = self.model.embed_tokens(tokens)
        cos, sin = self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, mask, caches[i] if caches is not None else None, start)
        return F.linear(self.model.norm(x), self.head())


def causal_mask(T):
    return torch.full((T, T), float("-inf")).triu(1)[None, None]


@torch.no_grad()
def sample(model, prompts, max_new, temperature, ignore_eos, gen):
    """Batched KV-cache sampling; returns the responses (lists of ids, EOS included)."""
    c = model.c
    n, Lp = len(prompts), max(len(p) for p in prompts)
    Tmax = Lp + max_new
    tok = torch.full((n, Lp), PAD, dtype=torch.long)
    pad = torch.tensor([Lp - len(p) for p in prompts])
    for i, p in enumerate(prompts):
        tok[i, Lp - len(p):] = torch.tensor(p)
    caches = [(torch.empty(n, c["num_key_value_heads"], Tmax, c["head_dim"]),
               torch.empty(n, c["num_key_value_heads"], Tmax, c["head_dim"]))
              for _ in range(c["num_hidden_layers"])]
    keys = torch.arange(Tmax)
    keymask = torch.where(keys[None, :] >= pad[:, None], 0.0, float("-inf"))  # (n, Tmax)
    pos = (torch.arange(Lp)[None, :] - pad[:, None]).clamp(min=0)
    mask = causal_mask(Lp) + keymask[:, None, None, :Lp]
    # a fully masked row (a pad query) would be all -inf: let pad queries see themselves
    mask = torch.where(torch.eye(Lp, dtype=torch.bool)[None, None], torch.zeros(()), mask)
    logits = model(tok, pos, mask, caches, 0)[:, -1]
    out = torch.full((n, max_new), PAD, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    lens = torch.full((n,), max_new, dtype=torch.long)
    for s in range(max_new):
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        out[:, s] = nxt
        if not ignore_eos:
            eos = (nxt == EOS) & ~done
            lens = torch.where(eos, torch.full_like(lens, s + 1), lens)
            done |= eos
            if bool(done.all()):
                break
        if s + 1 == max_new:
            break
        t = Lp + s
        logits = model(nxt[:, None], (t - pad)[:, None], keymask[:, None, None, :t + 1],
                       caches, t)[:, -1]
    return [out[i, :lens[i]].tolist() for i in range(n)]


def token_logp(logits, targets):
    lp = torch.log_softmax(logits, dim=-1)
    return lp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1), lp


def add_problem(rng, n):
    def operand():
        d = rng.randint(1, n)
        lo = 0 if d == 1 else 10 ** (d - 1)
        return rng.randint(lo, 10 ** d - 1)
    a, b = operand(), operand()
    return f"{a}+{b}=", str(a + b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--max-new", type=int, default=0)
    ap.add_argument("--task", default="add:3")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--kl-coef", type=float, default=0.001)
    ap.add_argument("--clip", type=float, default=0.2)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    kind, _, digits = a.task.partition(":")
    if kind != "add":
        sys.exit("grpo_step_torch: only add:N tasks")
    nd = int(digits)
    max_new = a.max_new or (nd + 1) + 4  # grpo-train's default: the longest answer + 4

    with open(os.path.join(a.model, "config.json")) as f:
        c = json.load(f)
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    model = Qwen3(c)
    state = {k: v.float() for k, v in load_file(os.path.join(a.model, "model.safetensors")).items()}
    model.load_state_dict(state, strict=False)
    missing = [k for k, _ in model.named_parameters() if k not in state]
    if missing:
        sys.exit(f"grpo_step_torch: missing tensors {missing}")
    ref = Qwen3(c)
    ref.load_state_dict(model.state_dict())
    ref.requires_grad_(False)
    params = list(model.parameters())
    nparams = sum(p.numel() for p in params)
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=a.lr if a.lr is not None else 0.1)
    else:
        opt = torch.optim.AdamW(params, lr=a.lr if a.lr is not None else 1e-5, betas=(0.9, 0.999),
                                eps=1e-8, weight_decay=0.01)
    rng = random.Random(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    P, G = a.prompts, a.group
    n = P * G

    rows = []
    for step in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        probs = [add_problem(rng, nd) for _ in range(P)]
        prompts = [[BOS] + encode(p) for p, _ in probs for _ in range(G)]
        ts = time.perf_counter()
        resp = sample(model, prompts, max_new, a.temperature, a.ignore_eos, gen)
        sample_s = time.perf_counter() - ts
        rewards = torch.tensor([1.0 if decode(r) == probs[i // G][1] else 0.0
                                for i, r in enumerate(resp)]).view(P, G)
        mean, std = rewards.mean(1, keepdim=True), rewards.std(1, keepdim=True)
        adv = torch.where(std > 0, (rewards - mean) / (std + 1e-6), torch.zeros(()))
        adv = adv.view(n, 1)
        # the batch: BOS prompt response, right-padded; target at t is token t+1
        seqs = [p + r for p, r in zip(prompts, resp)]
        T = max(len(s) for s in seqs)
        tok = torch.full((n, T), PAD, dtype=torch.long)
        tgt = torch.full((n, T), -1, dtype=torch.long)
        rmask = torch.zeros(n, T)
        for i, s in enumerate(seqs):
            tok[i, :len(s)] = torch.tensor(s)
            tgt[i, :len(s) - 1] = tok[i, 1:len(s)]
            rmask[i, len(prompts[i]) - 1:len(s) - 1] = 1.0
        pos = torch.arange(T)[None].expand(n, T)
        cmask = causal_mask(T)
        with torch.no_grad():
            ref_lp, _ = token_logp(ref(tok, pos, cmask), tgt)
        lp, logprobs = token_logp(model(tok, pos, cmask), tgt)
        with torch.no_grad():
            entropy = (-(logprobs.exp() * logprobs).sum(-1) * rmask).sum() / rmask.sum()
        old = lp.detach()
        ratio = torch.exp(lp - old)
        pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - a.clip, 1 + a.clip))
        x = ref_lp - lp
        kl = torch.exp(x) - x - 1
        ntok = rmask.sum()
        loss = ((pg + a.kl_coef * kl) * rmask).sum() / ntok
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        tokens = sum(len(s) for s in seqs)
        if step >= a.warmup:
            rows.append(dict(step_time_s=dt, cpu_s=dc, sample_time_s=sample_s, tokens=tokens,
                             tokens_per_s=tokens / dt, resp_len=float(rmask.sum()) / n,
                             loss=float(loss), grad_norm=float(gnorm),
                             reward=float(rewards.mean()),
                             entropy=float(entropy)))
    med = lambda k: statistics.median(r[k] for r in rows)
    opt_bytes = sum(t.numel() * t.element_size() for s in opt.state.values()
                    for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    print(json.dumps(dict(
        impl="torch", torch=torch.__version__, threads=a.threads, optimizer=a.optimizer,
        prompts=P, group=G, max_new=max_new, ignore_eos=a.ignore_eos, steps=len(rows),
        nparams=nparams, step_time_s=med("step_time_s"), cpu_s=med("cpu_s"),
        sample_time_s=med("sample_time_s"), tokens=med("tokens"),
        tokens_per_s=med("tokens_per_s"),
        resp_len_mean=statistics.mean(r["resp_len"] for r in rows),
        reward_mean=statistics.mean(r["reward"] for r in rows),
        opt_state_bytes=opt_bytes,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))


if __name__ == "__main__":
    main()
