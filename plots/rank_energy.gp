# rank_energy.gp: how much of each run's update a rank-r approximation of every matrix keeps:
# sum_t energy_t(r) * ||dW_t||^2 / sum_t ||dW_t||^2 (solid) and the unweighted mean over the
# matrices (dashed), r = 1, 2, 4, ..., 256 (sparsity-scan --rank). The dotted vertical line marks
# r*, the LoRA rank that trains as many parameters as the update changed.
# Variables: files (rows: r energy_weighted energy_mean lora_params_at_r), titles, rstar (each
#            run's model r*); term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
n = words(files)
xmin = 1
do for [i=1:n] { _r = word(rstar,i) + 0; if (_r > 0 && _r < xmin) { xmin = _r } }
set logscale x 2
set xrange [xmin / 1.5:400]
set yrange [0:105]
set xlabel "rank r of the approximation (per matrix)"
set ylabel "update energy kept (% of ||ΔW||_F^2)"
set title "Rank of the update: energy of the best rank-r approximation (dotted: LoRA rank r* with as many parameters as changed weights)" font ",14"
set key bottom right
do for [i=1:n] {
  _r = word(rstar,i) + 0
  if (_r > 0) {
    set arrow i from _r, graph 0 to _r, graph 1 nohead dt 3 lw 2 lt i
    set label i sprintf("r* = %.3g (%s)", _r, word(titles,i)) at _r, graph 0.96 - 0.05 * (i - 1) left offset 0.5,0 tc lt i noenhanced
  }
}
plot for [i=1:n] word(files,i) using 1:(100*$2) with linespoints lw 2 lt i title word(titles,i) . " (weighted by ||ΔW||^2)", \
     for [i=1:n] word(files,i) using 1:(100*$3) with lines lw 1.5 dt 2 lt i title word(titles,i) . " (mean over matrices)"
