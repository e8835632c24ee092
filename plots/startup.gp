# startup.gp - pool start-up: from creating a pool to its first reply (p50 bar, p99 dot), per
# runtime and worker count (process workers: lanes inherited or opened by name), beside the
# runtime's spawn reference measured next to the cases (grey: pthread_create + join for
# threads, posix_spawn of /bin/true + waitpid for processes); log axis.
chart = "startup"; W = 960; H = 480
load "common.gp"
set title "Start-up: pool creation to first reply, p50 (bar) and p99 (dot), " \
    . "beside the spawn reference"
set logscale y
set ylabel "time (log)"
set xrange [0.2:xmax]
eval tics_from("x", group_x, group_names)
set xtics scale 0 font ",9"
set link x2
eval tics_from("x2", runtime_x, runtime_names)
set x2tics scale 0 font ",11"
set bmargin 4
set boxwidth 0.8
set key outside right top
plot data."/startup.dat" using 1:($4*1e-9):3 with boxes lc variable notitle, \
     "" using 1:($5*1e-9) with points pt 7 ps 0.8 lc rgb "#000000" title "p99", \
     for [t in transports] NaN with boxes lt tindex(t) title t, \
     NaN with boxes lt 9 title "spawn reference"
