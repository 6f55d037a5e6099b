# make bench: the plots of out/bench (run in that directory; data from
# scripts/bench-report.py).
set terminal pngcairo size 1000,600 noenhanced font ",10"

set output "ratios.png"
set title "KVMI / plain KVM (median, bars: min..max); P3: time ratio, 1 = no overhead"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.8
set logscale y
set yrange [0.001:2]
set grid ytics
set xtics rotate by -30
set ylabel "ratio"
plot "ratios.dat" using 2:3:4:xticlabels(1) notitle lc rgb "#3070b0", \
	1 with lines dt 2 lc rgb "black" title "1"

set output "p2-read.png"
set title "P2: reading guest memory, 1 MiB buffer (median, bars: min..max)"
unset style
set style data linespoints
unset xtics
set xtics
set logscale x 2
set logscale y
set autoscale y
set xlabel "bytes per read"
set ylabel "MiB/s"
set key top left
plot "p2.dat" using 1:2:3:4 with yerrorlines title "KVMI_VM_READ_PHYSICAL", \
	"p2.dat" using 1:5:6:7 with yerrorlines title "process_vm_readv (VMM)"
