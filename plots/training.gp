# training.gp: training dynamics of GRPO runs (grpo-train's metrics.jsonl), one line per run:
# mean training reward, KL to the reference policy, policy entropy, mean response length vs step.
# Variables: files (word list of data files: step reward_mean kl entropy resp_len_mean),
#            titles (word list of run labels), has (four 0/1: which columns hold values);
#            term, out (common.gp).
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("files")) files = "data/training-run.dat"
if (!exists("titles")) titles = files
n = words(files)
set multiplot layout 2,2 title "Training dynamics: one line per run (from metrics.jsonl)" font ",17"
set xlabel "training step"
set key top right
set offsets 0, 0, graph 0.22, graph 0.04
if (!exists("has")) has = "1 1 1 1"
# a panel: column c of every file; a panel with no values says so
panel(c) = (word(has, c - 1) + 0) ? \
    sprintf("plot for [i=1:n] word(files,i) using 1:%d with lines lw 2 lt i title word(titles,i)", c) : \
    nodata("not in metrics.jsonl")
set title "Mean training reward (over the step's responses)"
set ylabel "reward (verifier: 1 correct, 0 wrong)"
eval panel(2)
set title "KL to the reference policy (k3 estimate, mean over response tokens)"
set ylabel "KL (nats per token)"
eval panel(3)
set title "Entropy of the sampling policy (mean over response tokens)"
set ylabel "entropy (nats per token)"
eval panel(4)
set title "Mean response length (EOS included)"
set ylabel "response length (tokens)"
eval panel(5)
unset multiplot
