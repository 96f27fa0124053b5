# overlap.gp: how much two runs' changed weights overlap (sparsity-overlap), per module and overall
# ("all"), each against its random baseline (independent random sets of the same densities):
# o1 = |X&Y|/|X|, o2 = |X&Y|/|Y|, Jaccard = |X&Y|/|X|Y|.
# Variables: file (rows: index module o1 o1_random o2 o2_random jaccard jaccard_random), xrun,
#            yrun (the two runs), label (the report), rows (the module names of the rows), logy;
#            term, out.
_d = ARG0; _p = 0; do for [_i = 1:strlen(_d)] { if (_d[_i:_i] eq "/") { _p = _i } }
load _d[1:_p] . "common.gp"
if (!exists("logy")) logy = 1
set multiplot layout 3,1 title sprintf("Overlap of the weights changed by X = %s and Y = %s (bars: measured; hatched: random baseline)", xrun, yrun) noenhanced font ",16"
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.38 absolute
set xtics noenhanced scale 0 rotate by 20 right font ",11"
set grid noxtics
eval xtics_from(rows)
if (logy) { set logscale y; set format y "%g" } else { set yrange [0:*] }
set key outside right top
set bmargin 3.5
set lmargin 12
set rmargin 28
set ylabel "o1 (%)"
set title "o1 = |X ∩ Y| / |X|: share of X's changes that Y also made (random: Y's density)"
plot file using ($1-0.2):(100*$3) with boxes lt 1 title "measured", \
     file using ($1+0.2):(100*$4) with boxes fs pattern 4 lt 8 title "random baseline"
set ylabel "o2 (%)"
set title "o2 = |X ∩ Y| / |Y|: share of Y's changes that X also made (random: X's density)"
plot file using ($1-0.2):(100*$5) with boxes lt 2 title "measured", \
     file using ($1+0.2):(100*$6) with boxes fs pattern 4 lt 8 title "random baseline"
set ylabel "Jaccard (%)"
set bmargin 5
set xlabel "module (over all layers); all = the whole model" offset 0,0.5
set title "Jaccard = |X ∩ Y| / |X ∪ Y| (random: pq / (p + q - pq))"
plot file using ($1-0.2):(100*$7) with boxes lt 3 title "measured", \
     file using ($1+0.2):(100*$8) with boxes fs pattern 4 lt 8 title "random baseline"
unset multiplot
