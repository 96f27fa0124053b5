# common.gp: loaded by every figure script of sparsity-plot (plots/*.gp) from the folder of the
# script itself: terminal and output file, missing values, colours and styles.
# Variables: term (gnuplot terminal, default PNG 1500x1000), out (the figure file).
if (!exists("term")) term = "pngcairo size 1500,1000 font 'Sans,13' linewidth 1.5"
if (!exists("out")) out = "figure.png"
set terminal @term
set output out
set encoding utf8
set datafile missing NaN
set style line 100 lc rgb '#d9d9d9' lt 1 lw 0.6
set grid back ls 100
set key noenhanced box opaque samplen 4 spacing 1.1
# ten distinguishable colours (matplotlib's tab10), points filled
set linetype 1 lc rgb '#1f77b4' pt 7 ps 1.0
set linetype 2 lc rgb '#ff7f0e' pt 5 ps 1.0
set linetype 3 lc rgb '#2ca02c' pt 9 ps 1.2
set linetype 4 lc rgb '#d62728' pt 11 ps 1.2
set linetype 5 lc rgb '#9467bd' pt 13 ps 1.2
set linetype 6 lc rgb '#8c564b' pt 7 ps 1.0
set linetype 7 lc rgb '#e377c2' pt 5 ps 1.0
set linetype 8 lc rgb '#7f7f7f' pt 9 ps 1.2
set linetype 9 lc rgb '#bcbd22' pt 11 ps 1.2
set linetype 10 lc rgb '#17becf' pt 13 ps 1.2
set linetype cycle 10
set style textbox opaque fillcolor rgb '#ffffff' noborder margins 1,1
# a word list's entries as x tics at 0, 1, 2, ...: eval xtics_from(list)
xtics_from(list) = sprintf("set xtics (%s)", tics_items(list, 1, ""))
tics_items(list, i, acc) = i > words(list) ? acc : \
    tics_items(list, i + 1, acc . (i > 1 ? ", " : "") . sprintf("'%s' %d", word(list, i), i - 1))
# an empty panel: eval nodata("message")
nodata(msg) = sprintf("set label 99 '%s' at graph 0.5,0.5 center; unset xtics; unset ytics; unset key; " . \
    "plot [0:1][0:1] NaN notitle; unset label 99; set xtics; set ytics; set key", msg)
