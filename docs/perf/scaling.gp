# gnuplot docs/perf/scaling.gp (from the repository root)
set terminal svg size 800,500 dynamic
set output 'docs/perf/scaling.svg'
set multiplot layout 1,2 title 'strict-unmap, 2 host SMMUs, sim (wait block), 2-vCPU VM'
set logscale x 2
set xlabel 'VMs'
set ylabel 'guest kcmds/s per host SMMU'
set key top left
set grid
plot 'docs/perf/scaling.dat' using 1:2 with linespoints lw 2 title 'qemu', \
     '' using 1:3 with linespoints lw 2 title 'qemu-batched', \
     '' using 1:4 with linespoints lw 2 title 'offload'
set logscale y
set ylabel 'vCPU held in VMM, ns per guest cmd (log)'
plot 'docs/perf/scaling.dat' using 1:5 with linespoints lw 2 title 'qemu', \
     '' using 1:6 with linespoints lw 2 title 'qemu-batched', \
     '' using 1:7 with linespoints lw 2 title 'offload'
unset multiplot
