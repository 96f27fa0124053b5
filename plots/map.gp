# map.gp: the update map of one matrix of one run (sparsity-scan --maps): where the changed
# weights are. Density map of the changed share per cell, the changed share of every row and of
# every column (stripes stand out above the dotted K x mean line), and per attention head.
# Variables: densfile (a matrix of r x c cells), rowsfile (row row_changed row_fraction),
#            colsfile (column col_changed col_fraction), headsfile (head fraction; "" for none),
#            title, R, C (rows, columns), r, c (cells), mean (the matrix's changed share),
#            k (the stripe factor K), hd (head size), nh (heads), headaxis ("row" or "column"); term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("headsfile")) headsfile = ""
set multiplot layout 2,2 title sprintf("Update map of %s: %.4g%% of its %d x %d weights changed", title, 100*mean, R, C) noenhanced font ",16"
# density
set title sprintf("Changed share per cell (%d x %d cells of %.3g x %.3g weights)", r, c, R/r, C/c)
set xlabel "column (input feature)"
set ylabel "row (output feature)"
set xrange [0:C]
set yrange [R:0]
set cblabel "changed (% of the cell)"
set palette defined (0 '#ffffff', 0.15 '#fee8c8', 0.4 '#fdbb84', 0.7 '#e34a33', 1 '#7f0000')
set cbrange [0:*]
set grid noxtics noytics
unset key
plot densfile matrix using (($1 + 0.5) * C / c):(($2 + 0.5) * R / r):(100 * $3) with image
set grid xtics ytics
unset cblabel
# heads
set autoscale
set yrange [0:*]
if (headsfile ne "") {
  set title sprintf("Changed share per attention head (head size %d: %s blocks)", hd, headaxis)
  set xlabel "head"
  set ylabel "changed (% of the head's weights)"
  set style fill solid 0.85 border rgb '#333333'
  set boxwidth 0.7
  set xtics 1
  set key top left horizontal
  set offsets 0, 0, graph 0.18, 0
  set xrange [-0.6:nh - 0.4]
  plot headsfile using 1:(100 * $2) with boxes lt 1 title "head", \
       100 * mean with lines dt 2 lc rgb '#333333' title "matrix mean"
  set xtics autofreq
  set offsets 0, 0, 0, 0
} else {
  set title "Per-head shares: only for attention projections"
  eval nodata("not an attention projection (q/k/v/o_proj)")
}
set key top left horizontal
set offsets 0, 0, graph 0.18, 0
set title sprintf("Changed share of each row (%d rows)", R)
set xlabel "row (output feature)"
set ylabel "changed (% of the row)"
set xrange [0:R-1]
plot rowsfile using 1:(100 * $3) with impulses lt 1 title "row", \
     100 * mean with lines dt 2 lw 1.5 lc rgb '#333333' title "matrix mean", \
     100 * k * mean with lines dt 3 lw 1.5 lc rgb '#d62728' title sprintf("stripe threshold (%g x mean)", k)
set title sprintf("Changed share of each column (%d columns)", C)
set xlabel "column (input feature)"
set ylabel "changed (% of the column)"
set xrange [0:C-1]
plot colsfile using 1:(100 * $3) with impulses lt 2 title "column", \
     100 * mean with lines dt 2 lw 1.5 lc rgb '#333333' title "matrix mean", \
     100 * k * mean with lines dt 3 lw 1.5 lc rgb '#d62728' title sprintf("stripe threshold (%g x mean)", k)
unset multiplot
