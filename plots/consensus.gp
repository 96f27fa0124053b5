# consensus.gp: consensus of k >= 3 runs (sparsity-overlap /consensus): the share of weights
# changed by exactly j of the runs against the Poisson-binomial expectation for independent runs,
# and a layer x module map of how much more often than chance all k runs changed the same weight.
# Variables: file (rows: j share expected), mapfile (rows: layer module_index enrichment share_all
#            expected_all numel module; "" for none), modules, label, k, logy, logcb; term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("logy")) logy = 1
if (!exists("logcb")) logcb = 1
if (!exists("mapfile")) mapfile = ""
set multiplot layout 1,2 title sprintf("Consensus of %d runs (%s)", k, label) noenhanced font ",17"
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.38 absolute
set xtics 1 scale 0
set grid noxtics
if (logy) { set logscale y; set format y "%g" } else { set yrange [0:*] }
set xlabel "number of runs j that changed the weight"
set ylabel "weights (% of all weights)"
set key top right
set title "Weights changed by exactly j runs"
set offsets 0, 0, graph 0.15, 0
set xrange [-0.6:k+0.6]
plot file using ($1-0.2):(100*$2) with boxes lt 1 title "measured", \
     file using ($1+0.2):(100*$3) with boxes fs pattern 4 lt 8 title "independent runs (Poisson-binomial)"
unset logscale y
set format y "%g"
set offsets 0, 0, 0, 0
set autoscale
set xrange [*:*]
set yrange [*:*]
if (mapfile ne "") {
  set title sprintf("Changed by all %d runs: measured / expected for independent runs\n(grey: no run changed the cell, or none by all)", k)
  eval xtics_from(modules)
  set xtics rotate by 30 right noenhanced scale 0
  set ytics 1 scale 0
  set xlabel "module"
  set ylabel "layer"
  set cblabel "enrichment over chance (measured / expected)"
  set palette defined (0 '#f7fbff', 0.3 '#9ecae1', 0.6 '#3182bd', 1 '#08306b')
  if (logcb) { set logscale cb; set format cb "%g" }
  set grid noxtics noytics
  set autoscale xfix
  set autoscale yfix
  unset key
  set object 2 rectangle from graph 0,0 to graph 1,1 behind fillcolor rgb '#d0d0d0' fillstyle solid noborder
  unset datafile missing
  plot mapfile using 2:1:((logcb && $3 <= 0) ? NaN : $3) with image
} else {
  set title "No layer x module cells in layers >= 0"
  eval nodata("no cells")
}
unset multiplot
