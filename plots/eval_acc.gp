# eval_acc.gp: validation accuracy vs step, one line per run (grpo-train's metrics.jsonl lines
# {"step": N, "eval_acc": X}: greedy decoding on the eval problems).
# Variables: files (data files: step eval_acc), titles (run labels); term, out (common.gp).
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("files")) files = "data/eval_acc-run.dat"
if (!exists("titles")) titles = files
n = words(files)
set title "Validation accuracy (greedy decoding on the held-out eval problems)" font ",16"
set xlabel "training step"
set ylabel "validation accuracy (% correct)"
set yrange [0:*]
set key bottom right
plot for [i=1:n] word(files,i) using 1:(100*$2) with linespoints lw 2 lt i title word(titles,i)
