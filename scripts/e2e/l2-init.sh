#!/bin/busybox sh
# /init of the L2 guest (the VM that the introspection tool watches).
# Markers for the scenario driver (scripts/e2e/l1-init.sh):
#   L2-BOOT-OK <uptime>, L2-VERSION <the banner>, L2-PATTERN gpa=... token=...,
#   L2-READY, then L2-ALIVE <n> every second while it runs a fork/exec
#   workload (every new process means CR3 writes).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo "L2-BOOT-OK $(cut -d' ' -f1 /proc/uptime)"
echo "L2-VERSION $(cat /proc/version)"
tok=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
/bin/kvmi-e2e pattern "$tok" &
(while :; do /bin/busybox true; done) &
sleep 1
echo "L2-READY"
i=0
while :; do
	i=$((i + 1))
	echo "L2-ALIVE $i"
	sleep 1
done
