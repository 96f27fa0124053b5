"""An independent plain-PyTorch Qwen3 decoder (as Hugging Face's Qwen3ForCausalLM defines it):
the oracle that train/model*.c is checked against (test_model_torch.py).

Token embedding; per layer: RMSNorm -> q/k/v projections, per-head RMSNorm on q and k, rotary
embedding (rotate-half, inv_freq = theta^(-2i/D)), causal softmax attention with key-value heads
repeated for grouped-query attention, o_proj, residual; RMSNorm -> down(silu(gate) * up),
residual; final RMSNorm; lm_head (the embedding when tied). No biases. Autograd gives the
gradients. Runs in whatever dtype the parameters have (float64 for the oracle)."""
import math

import torch
import torch.nn.functional as F


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_cos_sin(head_dim, theta, T, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, D)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def repeat_kv(x, n_rep):
    """(B, K, T, D) -> (B, K * n_rep, T, D): query head h reads key-value head h // n_rep."""
    if n_rep == 1:
        return x
    b, k, t, d = x.shape
    return x[:, :, None, :, :].expand(b, k, n_rep, t, d).reshape(b, k * n_rep, t, d)


def param_names(cfg):
    names = ["model.embed_tokens.weight"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        names += [p + "input_layernorm.weight", p + "self_attn.q_proj.weight",
                  p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight",
                  p + "self_attn.o_proj.weight", p + "self_attn.q_norm.weight",
                  p + "self_attn.k_norm.weight", p + "post_attention_layernorm.weight",
                  p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight"]
    names.append("model.norm.weight")
    if not cfg["tie_word_embeddings"]:
        names.append("lm_head.weight")
    return names


def param_shapes(cfg):
    V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    Q, K, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    shapes = {}
    for n in param_names(cfg):
        if n.endswith("norm.weight"):
            shapes[n] = (D,) if ("q_norm" in n or "k_norm" in n) else (H,)
        elif "q_proj" in n:
            shapes[n] = (Q * D, H)
        elif "k_proj" in n or "v_proj" in n:
            shapes[n] = (K * D, H)
        elif "o_proj" in n:
            shapes[n] = (H, Q * D)
        elif "gate_proj" in n or "up_proj" in n:
            shapes[n] = (I, H)
        elif "down_proj" in n:
            shapes[n] = (H, I)
        else:  # embed_tokens, lm_head
            shapes[n] = (V, H)
    return shapes


def attention(cfg, w, p, x, cos, sin):
    B, T, _ = x.shape
    Q, K, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    q = F.linear(x, w[p + "q_proj.weight"]).view(B, T, Q, D)
    k = F.linear(x, w[p + "k_proj.weight"]).view(B, T, K, D)
    v = F.linear(x, w[p + "v_proj.weight"]).view(B, T, K, D)
    q = rms_norm(q, w[p + "q_norm.weight"], eps).transpose(1, 2)  # (B, Q, T, D)
    k = rms_norm(k, w[p + "k_norm.weight"], eps).transpose(1, 2)
    v = v.transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = repeat_kv(k, Q // K)
    v = repeat_kv(v, Q // K)
    scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D)
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(causal, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, Q * D)
    return F.linear(out, w[p + "o_proj.weight"])


def forward(cfg, w, tokens):
    """Logits (B, T, V) for token ids (B, T); w maps HF names to tensors."""
    eps = cfg["rms_norm_eps"]
    T = tokens.shape[1]
    x = F.embedding(tokens, w["model.embed_tokens.weight"])
    cos, sin = rotary_cos_sin(cfg["head_dim"], cfg["rope_theta"], T, x.dtype)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = x + attention(cfg, w, p + "self_attn.", rms_norm(x, w[p + "input_layernorm.weight"], eps),
                          cos, sin)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        mlp = F.silu(F.linear(h, w[p + "mlp.gate_proj.weight"])) * F.linear(h, w[p + "mlp.up_proj.weight"])
        x = x + F.linear(mlp, w[p + "mlp.down_proj.weight"])
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return F.linear(x, head)


def logp_entropy(logits, targets):
    """log softmax at targets and the entropy, 0 where targets is -1."""
    logprobs = torch.log_softmax(logits, dim=-1)
    mask = targets >= 0
    lp = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    ent = -(logprobs.exp() * logprobs).sum(-1)
    zero = torch.zeros_like(lp)
    return torch.where(mask, lp, zero), torch.where(mask, ent, zero)
