# contended.gp - the contended case: busy processes (one per CPU) compete with the pool. Left,
# one call in flight: p50 (bar) and p99 (dot) per transport and runtime, the same case on a
# quiet machine as an open diamond; right, bursts: calls per second, quiet machine likewise.
chart = "contended"; W = 960; H = 500
load "common.gp"
set multiplot title sprintf("Contended: %s busy processes compete for the CPUs ", hogs) \
    . "(open diamond: the same case on a quiet machine)"
unset key
set boxwidth 0.8
set logscale y
set xtics scale 0 font ",9"
eval panel(1, 1, 2, 1)
set title "one call in flight: p50 (bar), p99 (dot)"
set ylabel "round trip (log)"
set xrange [0.3:lat_n + 0.7]
if (lat_n == 0) {
    set label 102 "no single-call contended cases" at graph 0.5, graph 0.5 center
    set yrange [1e-7:1e-1]
    plot NaN notitle
    unset label 102
    set autoscale y
} else {
    plot data."/contended-lat.dat" using 1:($5*1e-9):4:xtic(stringcolumn(2)."\n".stringcolumn(3)) \
             with boxes lc variable notitle, \
         "" using 1:($6*1e-9) with points pt 7 ps 0.8 lc rgb "#000000" notitle, \
         "" using 1:($7*1e-9) with points pt 12 ps 1.2 lc rgb "#000000" notitle
}
@once
eval panel(2, 1, 2, 1)
set title sprintf("bursts of %s calls: calls/s", burst)
set ylabel "calls/s (log)"
set format y "%.0s %c"
set xrange [0.3:burst_n + 0.7]
if (burst_n == 0) {
    set label 102 "no burst contended cases" at graph 0.5, graph 0.5 center
    set yrange [1e3:1e8]
    plot NaN notitle
    unset label 102
} else {
    plot data."/contended-burst.dat" using 1:5:4:xtic(stringcolumn(2)."\n".stringcolumn(3)) \
             with boxes lc variable notitle, \
         "" using 1:6 with points pt 12 ps 1.2 lc rgb "#000000" notitle
}
eval key_band
plot for [t in transports] NaN with boxes lt tindex(t) title t, \
     NaN with points pt 7 ps 0.8 lc rgb "#000000" title "p99", \
     NaN with points pt 12 ps 1.2 lc rgb "#000000" title "quiet machine"
unset multiplot
