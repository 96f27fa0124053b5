# sparsity.gp: update sparsity per run as a bar chart: the share of weights that changed
# (1 - sparsity) exactly and at each tolerance; each bar is labelled with the sparsity itself.
# Variables: file (rows: run_index measure_index changed_fraction changed numel sparsity_label
#            run measure), runs (run labels), measures (measure titles), logy (1: log y axis),
#            ymin, ymax (smallest / largest positive changed share, %); term, out (common.gp).
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("file")) file = "data/sparsity.dat"
if (!exists("logy")) logy = 1
nr = words(runs); nm = words(measures)
bw = 0.84 / nm
set boxwidth bw * 0.92 absolute
set style fill solid 0.85 border rgb '#333333'
set xrange [-0.6:nr - 0.4]
eval xtics_from(runs)
set xtics noenhanced scale 0 font ",14"
set grid noxtics
set title "Update sparsity per run: share of weights that changed (bar labels: sparsity)" font ",16"
set ylabel "changed weights, 1 - sparsity (% of all compared weights)"
set xlabel "run"
if (logy) { set logscale y; set yrange [ymin:ymax * 60]; set format y "%g" } else { set yrange [0:ymax * 1.35] }
set key top left
xpos(r, m) = r + (m - (nm - 1) / 2.0) * bw
plot for [m=0:nm-1] file using (xpos($1, m)):($2 == m ? 100 * $3 : NaN) with boxes lt m+1 title word(measures, m+1), \
     file using (xpos($1, $2)):(100 * $3 > 0 ? 100 * $3 : (logy ? ymin : 0)):6 with labels rotate by 90 left offset 0,0.4 font ",11" notitle
