# batch.gp - bursts: calls per second against the burst size (calls in flight), one worker,
# log-log, one line per transport (its default wait), thread workers left and process workers
# right; grey: the raw ring's items per second with the same bursts and no scheduler, measured
# next to the cases (knit-bench/1 results: one ring floor, bursts of 1000).
chart = "batch"; W = 960; H = 480
load "common.gp"
set multiplot title "Calls per second against burst size, one worker (log-log)"
set logscale xy
set format y "%.0s %c"
set xlabel "burst size (calls submitted at once)"
set ylabel "calls/s (log)"
set xrange [0.7:1500]
unset key
col = 0
do for [rt in "thread process"] {
    col = col + 1
    eval panel(col, 1, 2, 1)
    list = value(rt."_list")
    set title rt." workers"
    if (words(list) == 0) {
        set label 102 "no ".rt." batch cases in this result" at graph 0.5, graph 0.5 center
        set yrange [1e3:1e9]
        plot NaN notitle
        unset label 102
        set autoscale y
    } else {
        ring = !value(rt."_ring") ? "" : sprintf(', "%s/batch-%s-ring.dat" using 1:2', data, rt) \
            . " with linespoints lt 9 dt 2 pt 6 notitle"
        eval 'plot for [t in list] data."/batch-".rt."-".t.".dat" using 1:2 ' \
            . 'with linespoints lt tindex(t) notitle' . ring
    }
    @once
}
eval key_band
plot for [t in transports] NaN with linespoints lt tindex(t) title t, \
     NaN with linespoints lt 9 dt 2 pt 6 title "raw ring, the same bursts (reference)"
unset multiplot
