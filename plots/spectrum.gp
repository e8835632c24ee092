# spectrum.gp - latency by percentile (HdrHistogram style): the x axis counts nines (90 % = 1,
# 99 % = 2, ...), one line per transport for the `latency` cases with their default wait,
# thread workers left, process workers right, the spin floor's spectrum in grey. The first
# point of a line is the minimum, the last one the maximum (at 1 - 1/calls).
chart = "spectrum"; W = 960; H = 480
load "common.gp"
set multiplot title "Latency by percentile, one call in flight " \
    . "(first point: the minimum, last: the maximum)"
set logscale y
set xrange [0:xmax]
set xtics ("50%%" log10(2), "90%%" 1, "99%%" 2, "99.9%%" 3, "99.99%%" 4, "99.999%%" 5, \
           "99.9999%%" 6, "99.99999%%" 7, "99.999999%%" 8) font ",9"
set xlabel "percentile (nines: 90 % = 1, 99 % = 2, ...)"
set ylabel "round trip (log)"
unset key
floor_plot = !has_floor ? "" : sprintf(', "%s/spectrum-floor.dat"', data) \
    . ' using 1:($2*1e-9) with lines lt 9 dt 2 notitle'
col = 0
do for [rt in "thread process"] {
    col = col + 1
    eval panel(col, 1, 2, 1)
    list = value(rt."_list")
    set title rt." workers"
    if (words(list) == 0) {
        set label 102 "no ".rt." latency cases in this result" at graph 0.5, graph 0.5 center
        set yrange [1e-7:1e-3]
        plot NaN notitle
        unset label 102
        set autoscale y
    } else {
        plot for [t in list] data."/spectrum-".rt."-".t.".dat" using 1:($2*1e-9) \
                 with linespoints lt tindex(t) notitle @floor_plot
    }
    @once
}
eval key_band
plot for [t in transports] NaN with linespoints lt tindex(t) title t, \
     NaN with lines lt 9 dt 2 title "spin floor (no scheduler)"
unset multiplot
