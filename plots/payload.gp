# payload.gp - one call in flight with a payload of N bytes echoed back: payload bytes per
# second (both directions, top) and the round trip's p50 (bottom) against N, log-log, thread
# workers left, process workers right, one line per transport (dashed: knit with the argument
# read in place). Grey: the copy bound, knit's copies of an echo with no scheduler, measured
# next to the cases (knit-bench/1 results: from the 1 MiB memcpy floor and knit's copies).
chart = "payload"; W = 960; H = 800
load "common.gp"
panel_bottom = 0.24; panel_left = 0.11
set multiplot title "Payload size: bytes/s and round trip, one call in flight (log-log)"
set logscale xy
set xrange [4:1.6e7]
set xtics ("8 B" 8, "64 B" 64, "512 B" 512, "4 KiB" 4096, "32 KiB" 32768, "256 KiB" 262144, \
           "2 MiB" 2097152, "16 MiB" 16777216) font ",9"
set xlabel "payload (argument = result size)"
unset key
col = 0
do for [rt in "thread process"] {
    col = col + 1
    list = value(rt."_list")
    inplace = value(rt."_inplace")
    set title rt." workers"
    do for [row = 1:2] {
        eval panel(col, row, 2, 2)
        if (row == 1) {
            set format y "%.0s %cB/s"; set ylabel "payload bytes/s (log)"; c = 2; set autoscale y
        } else {
            set format y "%.0s %cs"; set ylabel "round trip p50 (log)"; c = 3; set yrange [1e-8:*]
        }
        if (words(list) + words(inplace) == 0) {
            set label 102 "no ".rt." payload cases in this result" at graph 0.5, graph 0.5 center
            if (row == 1) { set yrange [1e3:1e10] } else { set yrange [1e-7:1e-1] }
            plot NaN notitle
            unset label 102
        } else {
            scale = row == 1 ? 1 : 1e-9
            bound = !value(rt."_bound") ? "" : \
                sprintf(', "%s/payload-%s-bound.dat" using 1:(column(%d)*%g)', data, rt, c, scale) \
                . " with lines lt 9 lw 2 notitle"
            cmd = 'plot NaN notitle'
            if (words(list) > 0) {
                cmd = cmd . ', for [t in list] data."/payload-".rt."-".t.".dat"' \
                    . ' using 1:(column(c)*scale) with linespoints lt tindex(t) notitle'
            }
            if (words(inplace) > 0) {
                cmd = cmd . ', for [t in inplace] data."/payload-".rt."-".t.".dat"' \
                    . ' using 1:(column(c)*scale) with linespoints lt 1 dt 2 pt 6 notitle'
            }
            eval cmd.bound
        }
        @once
        unset title
    }
}
panel_bottom = 0.28
eval key_band
set key maxrows 2
plot for [t in transports] NaN with linespoints lt tindex(t) title t, \
     NaN with linespoints lt 1 dt 2 pt 6 title "knit, argument read in place", \
     NaN with lines lt 9 lw 2 title "copy bound: knit's copies, no scheduler"
unset multiplot
