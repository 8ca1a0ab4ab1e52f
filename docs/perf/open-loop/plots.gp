set terminal svg size 800,500 dynamic
set output 'docs/perf/open-loop/latency-cdf.svg'
set title 'guest CMD_SYNC latency CDF (strict-unmap, 64 VMs, 2 host SMMUs)' noenhanced
set xlabel 'latency, us (log)'
set ylabel 'fraction'
set logscale x
set key bottom right
set grid
plot for [i=0:*] 'docs/perf/open-loop/latency-cdf.dat' index i using 1:2 with steps lw 2 title columnheader(1)
reset
set terminal svg size 800,500 dynamic
set output 'docs/perf/open-loop/per-cmd.svg'
set title 'per guest command (strict-unmap)' noenhanced
set style data histograms
set style fill solid 0.8
set logscale y
set ylabel 'ns per guest command (log)'
set grid ytics
plot 'docs/perf/open-loop/per-cmd.dat' using 2:xtic(1) title 'vCPU held in VMM', '' using 3 title 'guest SYNC wait'
