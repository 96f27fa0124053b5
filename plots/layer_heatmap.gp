# layer_heatmap.gp: layer x module heat map of one run's update: the share of each cell's weights
# that changed (1 - sparsity, parameter-weighted; sparsity-scan /layers/sparsity, layers >= 0).
# Variables: file (rows: layer module_index changed_fraction sparsity module; a blank line after
#            each layer), label (the run), modules (module names, in column order), logcb (1: log
#            colour scale), cells (number of cells: values are printed when at most 200); term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("logcb")) logcb = 1
if (!exists("cells")) cells = 1000
set title sprintf("Share of weights changed per layer and module, run %s", label) noenhanced font ",16"
eval xtics_from(modules)
set xtics rotate by 30 right noenhanced scale 0
set ytics 1 scale 0
set xlabel "module"
set ylabel "layer"
set cblabel "changed weights, 1 - sparsity (% of the cell)"
set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', 4 '#fde725')
if (logcb) { set logscale cb; set format cb "%g" }
set grid noxtics noytics
set tics out
set object 1 rectangle from graph 0,0 to graph 1,1 behind fillcolor rgb '#d0d0d0' fillstyle solid noborder
unset key
set offsets 0,0,0,0
set autoscale xfix
set autoscale yfix
# NaN (no such module in the layer) and, on a log scale, 0 stay blank (grey): a NaN must not
# drop the row (it would break the image grid), so NaN is not "missing" here.
unset datafile missing
val(v) = (logcb && v <= 0) ? NaN : 100 * v
set label 98 "grey: no change (0) or no such module" at graph 1, graph -0.14 right font ",10" tc rgb '#555555'
if (!logcb) { set label 98 "grey: no such module in the layer" }
if (cells <= 200) {
  plot file using 2:1:(val($3)) with image, \
       file using 2:1:($3 == $3 ? sprintf("%.3g", 100*$3) : "") with labels boxed font ",10"
} else {
  plot file using 2:1:(val($3)) with image
}
