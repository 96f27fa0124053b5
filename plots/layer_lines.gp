# layer_lines.gp: share of weights changed per layer (layers >= 0), one colour per run: solid the
# parameter-weighted share, dashed the unweighted mean over the layer's matrices (the published
# per-layer figure).
# Variables: files (rows: layer frac_weighted frac_mean_matrix sparsity mean_matrix_sparsity),
#            titles, logy; term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("logy")) logy = 1
n = words(files)
set title "Share of weights changed per layer (solid: parameter-weighted; dashed: mean over the layer's matrices)" font ",15"
set xlabel "layer"
set ylabel "changed weights, 1 - sparsity (% of the layer)"
if (logy) { set logscale y; set format y "%g" } else { set yrange [0:*] }
set xtics 1
set offsets graph 0.03, graph 0.03, 0, 0
set key outside right top
plot for [i=1:n] word(files,i) using 1:(100*$2) with linespoints lw 2 lt i title word(titles,i), \
     for [i=1:n] word(files,i) using 1:(100*$3) with lines lw 1.5 dt 2 lt i title word(titles,i) . " (mean over matrices)"
