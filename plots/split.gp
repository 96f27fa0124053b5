# split.gp: the never / restored / final split of a run's weights over its snapshots
# (sparsity-scan --series /split), per module and overall ("all"): never changed, changed and
# then restored to the base bits at the last snapshot, changed at the last snapshot.
# Variables: file (rows: index module numel never restored final never_fraction
#            restored_fraction final_fraction), label (the run), summary, rows (the module names of the rows), logy; term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("logy")) logy = 1
if (!exists("summary")) summary = ""
set title sprintf("Never / restored / final split over the snapshots of %s\n%s", label, summary) noenhanced font ",16"
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.27 absolute
set xtics rotate by 30 right noenhanced scale 0
set grid noxtics
eval xtics_from(rows)
set xlabel "module (over all layers)"
set ylabel "share of the module's weights (%)"
if (logy) { set logscale y; set format y "%g"; set yrange [*:300] } else { set yrange [0:115] }
set key outside right top
plot file using ($1-0.28):(100*$7) with boxes lc rgb '#9e9e9e' title "never changed", \
     file using ($1):(100*$8) with boxes lc rgb '#ff7f0e' title "changed, then restored", \
     file using ($1+0.28):(100*$9) with boxes lc rgb '#1f77b4' title "changed at the last step", \
     file using ($1-0.28):(100*$7):(sprintf("%.3g", 100*$7)) with labels rotate by 90 left offset 0,0.3 font ",9" notitle, \
     file using ($1):(100*$8 > 0 ? 100*$8 : NaN):(sprintf("%.3g", 100*$8)) with labels rotate by 90 left offset 0,0.3 font ",9" notitle, \
     file using ($1+0.28):(100*$9 > 0 ? 100*$9 : NaN):(sprintf("%.3g", 100*$9)) with labels rotate by 90 left offset 0,0.3 font ",9" notitle
