"""tests/gpu/compare_metrics.py: two grpo-train runs that differ only in --device (cpu, and cuda on
a lent GPU): are their per-step metrics the same? (tests/gpu/run.sh)

usage: python3 compare_metrics.py CPU_RUN/metrics.jsonl CUDA_RUN/metrics.jsonl [RTOL]

Counts (rewards, lengths, tokens) must be equal; loss, pg_loss, kl, grad_norm, entropy within
RTOL relative (default 1e-4) plus 1e-6 absolute (1e-8 for kl): the GEMMs sum in another order.
Prints the largest relative difference of each metric; exit 0 when within, 1 when not."""
import json
import sys


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    a, b = load(sys.argv[1]), load(sys.argv[2])
    rtol = float(sys.argv[3]) if len(sys.argv) == 4 else 1e-4
    bad = []
    if len(a) != len(b):
        bad.append(f"{len(a)} lines vs {len(b)}")
    worst = {}
    for x, y in zip(a, b):
        for key in ("reward_mean", "resp_len_mean", "tokens"):
            if key in x and x[key] != y.get(key):
                bad.append(f"step {x.get('step')}: {key} {x[key]} vs {y.get(key)}")
        for key, atol in (("loss", 1e-6), ("pg_loss", 1e-6), ("kl", 1e-8), ("grad_norm", 0),
                          ("entropy", 0)):
            if key not in x or key not in y:
                continue
            d = abs(x[key] - y[key])
            rel = d / max(abs(x[key]), 1e-300)
            worst[key] = max(worst.get(key, 0.0), rel)
            if d > rtol * abs(x[key]) + atol:
                bad.append(f"step {x.get('step')}: {key} {x[key]!r} vs {y[key]!r}")
    print("largest relative differences: " +
          ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    for line in bad[:10]:
        print("DIFF", line)
    return 1 if bad or not worst else 0


if __name__ == "__main__":
    sys.exit(main())
