# rank_spectra.gp: singular values of the update of chosen matrices of one run
# (sparsity-scan --rank /rank/singular_values): sigma_i / sigma_1, and the share of
# ||dW||_F^2 kept by the top i; the dotted lines mark each matrix's LoRA rank r*.
# Variables: files (rows: i sigma_i sigma_i/sigma_1 energy), titles (matrices), rstar (each
#            matrix's r*), label (the run); term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
n = words(files)
set multiplot layout 1,2 title sprintf("Singular-value spectra of the update, run %s", label) noenhanced font ",17"
set logscale y
set format y "10^{%L}"
set xlabel "index i"
set ylabel "σ_i / σ_1"
set key bottom left
set xrange [1:*]
set autoscale xfixmax
# The SVD runs in float32: values below about 1e-6 sigma_1 are not resolved (docs/metrics.md).
set yrange [1e-9:2]
set object 1 rectangle from graph 0, first 1e-9 to graph 1, first 1e-6 behind fillcolor rgb '#f0f0f0' fillstyle solid noborder
set label 1 "below float32 accuracy (about 10^{-6} σ_1)" at graph 0.98, first 3e-7 right tc rgb '#777777'
set title "Normalized singular values"
plot for [i=1:n] word(files,i) using 1:3 with lines lw 2 lt i title word(titles,i)
unset object 1
unset label 1
unset logscale y
set format y "%g"
set logscale x 2
set yrange [0:105]
set xlabel "rank i (top singular values kept)"
set ylabel "energy kept (% of ||ΔW||_F^2)"
set key bottom right
set title "Cumulative energy (dotted: LoRA rank r* of the matrix)"
do for [i=1:n] {
  _r = word(rstar,i) + 0
  if (_r >= 1) { set arrow i from _r, graph 0 to _r, graph 1 nohead dt 3 lw 1.5 lt i }
}
plot for [i=1:n] word(files,i) using 1:(100*$4) with lines lw 2 lt i title word(titles,i)
unset multiplot
