# latency.gp - one call in flight, 8-byte argument: the round trip's p50 (bar) and p99 (dot)
# of every `latency` case, grouped by transport, per runtime and wait policy, on a log axis;
# a grey dash on a bar is that case's own reference (its raw mechanism under the same wait,
# no scheduler), the lines the spin floor (p50, p99) and the futex round trip.
chart = "latency"; W = 1100; H = 560
load "common.gp"
set title "Round trip, one call in flight, 8-byte argument: p50 (bar) and p99 (dot)"
set logscale y
set ylabel "round trip (log)"
set xrange [0.2:xmax]
set link x2
eval tics_from("x2", group_x, group_names)
set x2tics scale 0 font ",11"
set xtics scale 0 font ",9" rotate by 40 right
set bmargin 7
set boxwidth 0.8
set key outside right top
plot data."/latency.dat" using 1:($5*1e-9):4:xtic(stringcolumn(2)." ".stringcolumn(3)) \
         with boxes lc variable notitle, \
     "" using 1:($6*1e-9) with points pt 7 ps 0.8 lc rgb "#000000" title "p99", \
     "" using 1:($7*1e-9):(0.45) with xerrorbars pt -1 lt 9 lw 2 title "the case's reference", \
     for [t in transports] NaN with boxes lt tindex(t) title t, \
     floor_spin*1e-9 with lines lt 9 dt 1 title "spin floor p50 ".si(floor_spin*1e-9, "s"), \
     floor_spin_p99*1e-9 with lines lt 9 dt 2 \
         title "spin floor p99 ".si(floor_spin_p99*1e-9, "s"), \
     floor_futex*1e-9 with lines lt 9 dt 3 title "futex round trip p50 ".si(floor_futex*1e-9, "s")
