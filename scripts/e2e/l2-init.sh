#!/bin/busybox sh
# /init of the L2 guest (the VM that the introspection tool watches), and
# of the introspector VM of the same stage (kvmmem_token= on its command line).
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
# The introspector VM (QEMU -accel kvm,introspector=on): read the
# introspected VM's banner through /dev/kvmmem, then reboot (QEMU -no-reboot exits).
tok=$(sed -n 's/.*kvmmem_token=\([0-9a-f]*\).*/\1/p' /proc/cmdline)
if [ -n "$tok" ]; then
	gpa=$(sed -n 's/.*kvmmem_gpa=\(0x[0-9a-f]*\).*/\1/p' /proc/cmdline)
	echo "L2I-BOOT-OK $(cut -d' ' -f1 /proc/uptime)"
	/bin/kvmmem-e2e "$tok" "$gpa"
	echo "L2I-EXIT $?"
	reboot -f
fi
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
