# tolerance.gp: the tolerance curve of each run (sparsity-scan --hist): the share of weights whose
# change exceeds a tolerance, at every power of two (lines), absolute |B-A| > t and relative
# |B-A| > eta * max(|A|,|B|); points: the --tol / --rtol counts; dashed: the exact share (any change).
# Variables: absfiles, relfiles (rows: k 2^k changed_fraction changed; empty without /hist),
#            ptsfiles (rows: tolerance changed_fraction changed kind(0 abs, 1 rel)), titles,
#            exact (each run's exact changed share), hist, hasrel (0: no relative data), tmin, tmax (the --tol range), ymin, ymax (smallest and largest
#            positive changed share, %); term, out. The curves are exact at their points (the
#            powers of two); the lines between them only guide the eye.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
n = words(titles)
set multiplot layout 1,2 title "Tolerance curve: share of weights that changed by more than a tolerance" font ",17"
set logscale x 10
set logscale y 10
set format x "10^{%L}"
set format y "%g"
set ylabel "changed weights (% of all weights)"
if (exists("ymin") && exists("ymax")) { set yrange [ymin / 2:ymax * 5] }
set key bottom left
set title "Absolute tolerance: |B - A| > t"
# without /hist only the --tol points are drawn: frame them (tmin, tmax: the --tol range)
if (exists("hist") && !hist && exists("tmin")) { set xrange [tmin / 30:tmax * 30] }
set xlabel "tolerance t (weight units)"
plot for [i=1:n] word(absfiles,i) using 2:(100*$3) with linespoints lw 2 ps 0.6 lt i title word(titles,i), \
     for [i=1:n] word(ptsfiles,i) using ($4 == 0 ? $1 : NaN):(100*$2) with points pt 7 ps 1.6 lt i title word(titles,i) . " (--tol)", \
     for [i=1:n] 100 * word(exact,i) with lines dt 2 lw 1 lt i title (i == 1 ? "exact (any change)" : "")
set title "Relative tolerance: |B - A| > η · max(|A|, |B|)"
set xlabel "relative tolerance η"
if (!exists("hasrel")) hasrel = 1
if (!hasrel) {
  unset logscale x; unset logscale y; set format x "%g"; set autoscale x
  eval nodata("no relative data: rerun sparsity-scan with --hist or --rtol")
} else {
plot for [i=1:n] word(relfiles,i) using 2:(100*$3) with linespoints lw 2 ps 0.6 lt i title word(titles,i), \
     for [i=1:n] word(ptsfiles,i) using ($4 == 1 ? $1 : NaN):(100*$2) with points pt 5 ps 1.6 lt i title word(titles,i) . " (--rtol)", \
     for [i=1:n] 100 * word(exact,i) with lines dt 2 lw 1 lt i title (i == 1 ? "exact (any change)" : "")
}
unset multiplot
