# idle.gp - idle workers: left, the CPU an idle worker uses (percent of one core, per worker)
# while the host sleeps; right, the first call after the host slept a gap (p50, log-log) per
# transport (solid: thread workers, dashed: process workers) beside the futex round trip after
# the same gap (grey: the wake-up of CPUs that may have halted, measured next to the case).
chart = "idle"; W = 960; H = 500
load "common.gp"
set multiplot title "Idle: CPU of an idle worker, and the first call after an idle gap"
unset key
eval panel(1, 1, 2, 1)
set title "idle CPU per worker (% of one core)"
set boxwidth 0.8
set xrange [0.3:cpu_n + 0.7]
set yrange [0:*]
set format y "%g %%"
set xtics scale 0 font ",8"
if (cpu_n == 0) {
    set label 102 "no idle CPU cases in this result" at graph 0.5, graph 0.5 center
    set yrange [0:1]
    plot NaN notitle
    unset label 102
} else {
    plot data."/idle-cpu.dat" \
             using 1:5:4:xtic(stringcolumn(2)."\n".stringcolumn(3)."\n".stringcolumn(6)) \
             with boxes lc variable notitle, \
         "" using 1:5:(sprintf("%.3f", $5)) with labels offset 0, 0.7 font ",8" notitle
}
@once
eval panel(2, 1, 2, 1)
set title "first call after an idle gap (p50)"
set logscale xy
set autoscale xy
set xrange [5e-6:2e-1]
set format x "%.0s %cs"
set format y "%.0s %cs"
set xtics font ",10" scale 0.6
set xlabel "idle gap before the call (log)"
set ylabel "round trip (log)"
floor_plot = !has_floor ? "" : sprintf(', "%s/idle-gap-floor.dat"', data) \
    . ' using ($1*1e-9):($2*1e-9) with linespoints lt 9 dt 3 pt 6 notitle'
if (words(thread_list) + words(process_list) == 0) {
    set label 102 "no idle gap cases in this result" at graph 0.5, graph 0.5 center
    set yrange [1e-7:1e-1]
    plot NaN notitle
    unset label 102
} else {
    cmd = 'plot NaN notitle'
    if (words(thread_list) > 0) {
        cmd = cmd . ', for [t in thread_list] data."/idle-gap-thread-".t.".dat"' \
            . ' using ($1*1e-9):($2*1e-9) with linespoints lt tindex(t) notitle'
    }
    if (words(process_list) > 0) {
        cmd = cmd . ', for [t in process_list] data."/idle-gap-process-".t.".dat"' \
            . ' using ($1*1e-9):($2*1e-9) with linespoints lt tindex(t) dt 2 pt 6 notitle'
    }
    eval cmd.floor_plot
}
eval key_band
plot for [t in transports] NaN with linespoints lt tindex(t) title t." (thread)", \
     for [t in transports] NaN with linespoints lt tindex(t) dt 2 pt 6 title t." (process)", \
     NaN with linespoints lt 9 dt 3 pt 6 title "futex after the same gap"
unset multiplot
