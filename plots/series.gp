# series.gp: sparsity over a run's snapshots (sparsity-scan --series): the share of weights
# changed from the base to each step, and from the previous snapshot to each step.
# Variables: files (data files: step frac_vs_base frac_consecutive ...), titles, logy; term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("logy")) logy = 1
n = words(files)
set multiplot layout 1,2 title "Sparsity over training: share of weights changed (1 - sparsity)" font ",17"
set xlabel "training step (snapshot)"
set ylabel "changed weights (% of all weights)"
if (logy) { set logscale y; set format y "%g" } else { set yrange [0:*] }
set key top left
set xrange [0:*]
set offsets 0, graph 0.03, graph 0.12, 0
set title "Base -> step (cumulative update)"
plot for [i=1:n] word(files,i) using 1:(100*$2) with linespoints lw 2 lt i title word(titles,i)
set title "Previous snapshot -> step (consecutive update; the first is vs the base)"
plot for [i=1:n] word(files,i) using 1:(100*$3) with linespoints lw 2 dt 2 lt i title word(titles,i)
unset multiplot
