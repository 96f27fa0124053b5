"""train_step_torch.py: the PyTorch eager side of bench/train_step_bench (issue 7's benchmark:
grpo-train's model step on a GPU against PyTorch eager on the same GPU and batch).

The same model and step as train_step_bench: Qwen3-0.6B's shape by default (28 layers, hidden
1024, intermediate 3072, 16 query and 8 key/value heads of 128, vocabulary 151936, tied
embeddings; RMSNorm, RoPE theta 1e6, q/k norms, SwiGLU), random weights in float32; B sequences of
T tokens, every position a target. One step: the forward to log-probabilities of the targets
(log_softmax in float32) and their entropy (no grad), then the backward of their mean, gradients
into the float32 parameters. Written the way a competent PyTorch user would: nn.Linear layers,
F.scaled_dot_product_attention (causal, grouped-query), autograd; --gemm bf16 runs the forward
under torch.autocast(bfloat16) (bf16 GEMM inputs, float32 weights and accumulation, like
train_step_bench --gemm bf16), --gemm f32 keeps float32 with TF32 off.

Prints "RESULT train_step_torch_<gemm> <ms> ms (...)" (median of --steps after 2 warm-ups, CUDA
synchronized) and tokens/s. Exit 77 when --device cuda is asked for and torch sees no GPU.

usage: python3 train_step_torch.py [--device cuda|cpu] [--gemm bf16|f32] [--batch 8] [--seq 256]
         [--layers 28] [--hidden 1024] [--intermediate 3072] [--heads 16] [--kv-heads 8]
         [--head-dim 128] [--vocab 151936] [--steps 10]"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight * y).to(x.dtype)


def rope(x, cos, sin):
    """Rotate-half RoPE of x (B, heads, T, D) with cos, sin (T, D)."""
    h = x.shape[-1] // 2
    rot = torch.cat((-x[..., h:], x[..., :h]), dim=-1)
    return x * cos + rot * sin


def attention(q, k, v):
    """Causal grouped-query attention: F.scaled_dot_product_attention where torch has it (2.5+:
    enable_gqa), else the explicit softmax (older torch, e.g. Debian's 1.13: for smoke tests)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    T = q.shape[2]
    s = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(s.float(), dim=-1).to(v.dtype) @ v


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        H, D, Q, K, I = a.hidden, a.head_dim, a.heads, a.kv_heads, a.intermediate
        self.Q, self.K, self.D = Q, K, D
        self.input_layernorm = RMSNorm(H)
        self.q_proj = nn.Linear(H, Q * D, bias=False)
        self.k_proj = nn.Linear(H, K * D, bias=False)
        self.v_proj = nn.Linear(H, K * D, bias=False)
        self.o_proj = nn.Linear(Q * D, H, bias=False)
        self.q_norm = RMSNorm(D)
        self.k_norm = RMSNorm(D)
        self.post_attention_layernorm = RMSNorm(H)
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(h).view(B, T, self.Q, self.D)).transpose(1, 2)
        k = self.k_norm(self.k_proj(h).view(B, T, self.K, self.D)).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.K, self.D).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = attention(q, k, v)
        x = x + self.o_proj(att.transpose(1, 2).reshape(B, T, self.Q * self.D))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.hidden)
        inv = 1.0 / (1e6 ** (torch.arange(0, a.head_dim, 2).float() / a.head_dim))
        ang = torch.outer(torch.arange(a.seq).float(), inv)
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def forward(self, tokens):
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        return self.norm(x) @ self.embed_tokens.weight.t()  # tied lm_head


def step(model, tokens, targets, autocast, device):
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
        logits = model(tokens)
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    logp.mean().backward()
    return logp.detach(), entropy


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("batch", 8), ("seq", 256), ("layers", 28), ("hidden", 1024),
                          ("intermediate", 3072), ("heads", 16), ("kv_heads", 8),
                          ("head_dim", 128), ("vocab", 151936), ("steps", 10)):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--gemm", choices=("bf16", "f32"), default="bf16")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("train_step_torch: no CUDA device", file=sys.stderr)
        return 77
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1)
    model = Model(a).to(a.device)
    nparams = sum(p.numel() for p in model.parameters())
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    targets = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    times = []
    for i in range(a.steps + 2):  # 2 warm-ups
        model.zero_grad(set_to_none=True)
        sync()
        t0 = time.perf_counter()
        step(model, tokens, targets, a.gemm == "bf16", a.device)
        sync()
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    print(f"RESULT train_step_torch_{a.gemm} {med:.2f} ms ({a.device}, torch {torch.__version__}, "
          f"B {a.batch}, T {a.seq}, {nparams} params, median of {a.steps})")
    print(f"RESULT train_tokens_per_s_torch_{a.gemm} {a.batch * a.seq / (med / 1e3):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
