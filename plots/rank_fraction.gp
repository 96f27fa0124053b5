# rank_fraction.gp: the rank of one run's update per matrix, by layer and module
# (sparsity-scan --rank): numerical rank / min(m, n), and effective rank (99% of the energy) /
# min(m, n). Layer -1: matrices outside the layers (embeddings, lm_head).
# Variables: file (one block per module: module_index layer numerical_rank_fraction
#            effective_rank_99_fraction lora_r_star m n module name), modules, label; term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
nm = words(modules)
set multiplot layout 1,2 title sprintf("Rank of the update per matrix, run %s", label) noenhanced font ",17"
set xlabel "layer (-1: outside the layers)"
set xtics 1
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:105]
set key bottom right
set title "Numerical rank (σ_i > σ_1 · max(m,n) · 2^{-23})"
set ylabel "numerical rank (% of min(m, n))"
plot for [m=0:nm-1] file index m using 2:(100*$3) with linespoints lw 2 lt m+1 title word(modules, m+1)
set title "Effective rank: smallest k keeping 99% of ||ΔW||_F^2"
set ylabel "effective rank (% of min(m, n))"
plot for [m=0:nm-1] file index m using 2:(100*$4) with linespoints lw 2 lt m+1 title word(modules, m+1)
unset multiplot
