# common.gp - loaded first by every chart script: terminal, fonts, colours, footer, note.
# The caller sets: data (the directory export.py wrote), chart (the chart's name), out (the
# file to write), fmt ("svg" or "png"), W and H (size in pixels). Then the chart's variables
# (data/<chart>.vars.gp, written by export.py) are loaded, so the script can use them.
set encoding utf8
if (fmt eq "svg") {
    set terminal svg size W,H font "DejaVu Sans,11" background "#ffffff" noenhanced
} else {
    set terminal pngcairo size W,H font "DejaVu Sans,10" background "#ffffff" noenhanced
}
set output out
set datafile separator "\t"
load data."/colors.gp"
load data."/meta.gp"
load data."/".chart.".vars.gp"

set style fill solid 1.0 noborder
set border 3 lc rgb "#444444"
set tics nomirror out scale 0.6
set grid ytics lc rgb "#dddddd" lw 1 dt 1
set key top left Left reverse samplen 2 spacing 1.1 font ",10" box lc rgb "#dddddd" opaque

# Seconds with an SI prefix: 1.5e-6 -> "1.5 µs"; used for tic labels of ns axes plotted as s.
set micro
set format y "%.0s %cs"
prefix(e) = e <= -9 ? "n" : e == -6 ? "µ" : e == -3 ? "m" : e == 0 ? "" : e == 3 ? "k" : \
    e == 6 ? "M" : "G"
expo(x) = x <= 0 ? 0 : (e = floor(log10(x) / 3) * 3, e < -9 ? -9 : e > 9 ? 9 : e)
si(x, unit) = x != x ? "n/a" : sprintf("%.3g %s%s", x / 10.0**expo(x), prefix(expo(x)), unit)

# Machine, date and commit of the data (footer) and the chart's note (what is missing).
# A multiplot calls `@once` after its first panel so the two lines are drawn once.
set label 100 footer at screen 0.01, screen 0.02 left font ",8" tc rgb "#555555"
set label 101 note at screen 0.01, screen 0.05 left font ",8" tc rgb "#a00000"
once = "unset label 100; unset label 101"

# Tics of grouped bars: xtics at word(group_x, i) named word(group_names, i).
tics_from(axis, xs, names) = sprintf("set %stics (%s)", axis, \
    join_tics(xs, names, 1, words(xs)))
join_tics(xs, names, i, n) = i > n ? "" : \
    sprintf("'%s' %s%s", word(names, i), word(xs, i), i < n ? ", " : "") . \
    join_tics(xs, names, i + 1, n)

# Panels of a multiplot on a grid of ncols x nrows (column c, row r from 1, top row first):
# `eval panel(c, r, ncols, nrows)` before each panel's plot (with `unset key`). The band below
# the panels holds one shared key: `eval key_band` and then a plot of NaN series that only
# carry the titles (a key is laid out within its plot's width, so it gets a plot of its own).
panel_top = 0.88; panel_bottom = 0.28; panel_left = 0.09; panel_right = 0.97
panel_hgap = 0.11; panel_vgap = 0.12
panel_w(n) = (panel_right - panel_left - (n - 1) * panel_hgap) / n
panel_h(n) = (panel_top - panel_bottom - (n - 1) * panel_vgap) / n
panel(c, r, nc, nr) = sprintf("set lmargin at screen %g; set rmargin at screen %g; " . \
    "set tmargin at screen %g; set bmargin at screen %g", \
    panel_left + (c - 1) * (panel_w(nc) + panel_hgap), \
    panel_left + (c - 1) * (panel_w(nc) + panel_hgap) + panel_w(nc), \
    panel_top - (r - 1) * (panel_h(nr) + panel_vgap), \
    panel_top - (r - 1) * (panel_h(nr) + panel_vgap) - panel_h(nr))
key_band = "unset title; unset xlabel; unset ylabel; unset xtics; unset ytics; unset x2tics; " . \
    "unset border; unset grid; unset logscale; unset label; " . \
    "set xrange [0:1]; set yrange [0:1]; " . \
    "set lmargin at screen 0.02; set rmargin at screen 0.98; set tmargin at screen 0.17; " . \
    "set bmargin at screen 0.07; set key inside center center horizontal reverse Left " . \
    "samplen 3 width 2 nobox"
