#!/bin/busybox sh
# The end-to-end scenario, run by the L1 /init (our kernel under QEMU TCG).
# It starts QEMU with -enable-kvm and its introspection object (the L2
# guest) and the introspection tool (samples/kvmi). Every case prints one
# line "[e2e] E2E-CASE PASS|FAIL|SKIP name (reason)"; the tool's and QEMU's
# outputs are streamed to the console as "[e2e] [tool1] ...", "[e2e] [qemu]
# ...", and L2's console comes at the end as "[e2e] [l2] ...".
#
# Mode: /etc/e2e.conf sets QEMU (binary), PATCHED (1 = the QEMU has the
# introspection object), CASES (list), KEY. kvmi_e2e=off on the kernel
# command line runs only the kvm.introspection=0 case.

. /etc/e2e.conf
SOCK=/tmp/kvmi.sock
QMP=/tmp/qmp.sock
L2LOG=/tmp/l2.log
L2ILOG=/tmp/l2i.log
T0=$(cut -d' ' -f1 /proc/uptime)
ntool=0
TOOL_PID=
HOOK_PID=
QEMU_PID=

now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Every line goes to the console with the "[e2e] " prefix that the log checks
# expect; the /init does not pipe us (a pipe would buffer the streams).
say() { echo "[e2e] e2e[$(elapsed "$T0")s]: $*"; }
res() { # res PASS|FAIL|SKIP name [reason]
	st=$1 name=$2; shift 2
	echo "[e2e] E2E-CASE $st $name${*:+ ($*)}"
	say "$st $name"
}
check() { # check name "reason if false" test...
	name=$1 why=$2; shift 2
	if "$@"; then res PASS "$name"; else res FAIL "$name" "$why"; fi
}
# Deadlines use the clock (/proc/uptime, read by the shell itself): under a
# loaded TCG host a fork takes long, so counting loop turns is no measure.
uptime_s() { read up _ </proc/uptime; echo ${up%.*}; }
deadline() { echo $(($(uptime_s) + $1)); }
past() { [ "$(uptime_s)" -ge "$1" ]; }
# wait_for FILE REGEX SECONDS: poll until a line matches
wait_for() {
	end=$(deadline $3)
	while :; do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		past $end && return 1
		usleep 300000
	done
}
# wait_gone PID SECONDS: until the process is gone
wait_gone() {
	end=$(deadline $2)
	while kill -0 $1 2>/dev/null; do
		past $end && return 1
		usleep 300000
	done
	return 0
}
count() { grep -cE "$2" "$1" 2>/dev/null || true; }
alive() { sed -n 's/^L2-ALIVE \([0-9]*\).*/\1/p' $L2LOG | tail -1; }
qmp() { /bin/kvmi-e2e qmp $QMP "$1" ${2:-120}; }

# Copy a log to the console as it grows, prefixed: "[name] line".
STREAMS=
stream() {
	tail -n +1 -f "$1" 2>/dev/null | sed "s/^/[e2e] [$2] /" &
	STREAMS="$STREAMS $!"
}

start_tool() { # start_tool [options]: a new tool instance, log /tmp/tool$ntool.log
	ntool=$((ntool + 1))
	TOOL_LOG=/tmp/tool$ntool.log
	: >$TOOL_LOG
	stream $TOOL_LOG tool$ntool
	/bin/introspector "$@" $SOCK >$TOOL_LOG 2>&1 &
	TOOL_PID=$!
	wait_for $TOOL_LOG '^listening' 10
	say "tool $ntool (pid $TOOL_PID): $*"
}
stop_tool() { # SIGTERM, then SIGKILL after 10 s
	[ -n "$TOOL_PID" ] || return 0
	kill -TERM $TOOL_PID 2>/dev/null
	wait_gone $TOOL_PID 20
	kill -KILL $TOOL_PID 2>/dev/null
	wait $TOOL_PID 2>/dev/null
	TOOL_PID=
}
tool_exited() { ! kill -0 $TOOL_PID 2>/dev/null; }

# The device manager's log: QEMU's own output.
dm_log() { echo /tmp/qemu.log; }

start_l2() {
	: >$L2LOG
	intro=
	if [ "$PATCHED" = 1 ]; then
		intro="-object secret,id=kvmikey,data=$KEY -chardev socket,id=kvmichr,path=$SOCK,reconnect=1 -object introspection,id=kvmi,chardev=kvmichr,key=kvmikey"
	fi
	$QEMU -enable-kvm -cpu host -m 128 -smp 1 -name kvmi-e2e-l2 \
		-uuid 6b766d69-2d65-3265-0011-223344556677 \
		-M microvm,x-option-roms=off -bios /usr/share/qemu/qboot.rom \
		-kernel /l2/bzImage -initrd /l2/initrd.gz \
		-append "console=ttyS0 quiet panic=-1 $L2_APPEND" \
		-display none -monitor none -serial file:$L2LOG \
		-qmp unix:$QMP,server=on,wait=off $intro >>/tmp/qemu.log 2>&1 &
	QEMU_PID=$!
	L2_T0=$(now)
}

# The introspector VM: the same L2 kernel and initramfs, marked as an
# introspector (KVM_CAP_INTROSPECTOR); its /init runs kvmmem-e2e with the
# map token and the banner's gpa, then reboots, which ends QEMU (-no-reboot).
start_l2i() { # start_l2i TOKEN GPA
	: >$L2ILOG
	$QEMU -accel kvm,introspector=on -cpu host -m 96 -smp 1 -name kvmi-e2e-introspector \
		-M microvm,x-option-roms=off -bios /usr/share/qemu/qboot.rom \
		-kernel /l2/bzImage -initrd /l2/initrd.gz \
		-append "console=ttyS0 quiet panic=-1 $L2_APPEND kvmmem_token=$1 kvmmem_gpa=$2" \
		-display none -monitor none -serial file:$L2ILOG -no-reboot >>/tmp/qemu-l2i.log 2>&1 &
	L2I_PID=$!
	L2I_T0=$(now)
}

# Host memory, for the introspector VM's phase: MemAvailable in kB, and the
# active objects of the caches that its map/unmap cycles use (the mappings,
# the xarray of the caller's mappings, kmemleak's metadata).
mem_avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
slabs() {
	echo "MemAvailable $(mem_avail) kB, active objects:" \
		$(awk '$1 == "kmalloc-cg-64" || $1 == "radix_tree_node" || $1 == "kmemleak_object" { print $1, $2 }' /proc/slabinfo)
}

# The tool and QEMU logs are streamed; the consoles of L2 and of the
# introspector VM come at the end.
dump_logs() {
	sleep 1
	[ -f $L2LOG ] && tr -d '\r' <$L2LOG | sed 's/^/[e2e] [l2] /'
	[ -f $L2ILOG ] && tr -d '\r' <$L2ILOG | sed 's/^/[e2e] [l2i] /'
	[ -f /tmp/qemu-l2i.log ] && sed 's/^/[e2e] [qemu-l2i] /' /tmp/qemu-l2i.log
}

# ---------------------------------------------------------------------------
# If a case hangs, show the logs before the harness's timeout kills L1.
wd=$(sed -n 's/.*kvmi_e2e\.watchdog=\([0-9]*\).*/\1/p' /proc/cmdline)
( sleep ${wd:-780}; echo "[e2e] E2E-WATCHDOG: the scenario did not finish within ${wd:-780} s"
  ps | sed 's/^/[e2e] /'; dump_logs ) &
WD_PID=$!
: >/tmp/qemu.log
stream /tmp/qemu.log qemu

if grep -q 'kvmi_e2e=off' /proc/cmdline; then
	# kvm.introspection=0: the device manager must say why it cannot hook.
	start_tool --key "$KEY" --once --regs
	start_l2
	wait_for /tmp/qemu.log 'introspection' 60
	check introspection-off "no clear error from the device manager" \
		grep -qE 'kvm\.introspection' "$(dm_log)"
	check introspection-off-tool "the tool spoke KVMI although introspection is off" \
		sh -c "! grep -q '^KVMI version' /tmp/tool$ntool.log"
	qmp '{"execute":"quit"}' 10 >/dev/null 2>&1
	stop_tool
	wait $QEMU_PID 2>/dev/null
	kill $WD_PID $STREAMS 2>/dev/null
	dump_logs
	exit 0
fi

[ -c /dev/kvm ] || { res FAIL l2-boot "no /dev/kvm in L1"; exit 1; }
say "L1 ready, L2 QEMU: $QEMU (introspection object: $PATCHED)"

# --- the demo: handshake, registers, syscall entry, banner, memory, CR3, PF
start_l2
if wait_for $L2LOG '^L2-READY' 240; then
	res PASS l2-boot "$(elapsed "$L2_T0") s to L2-READY"
else
	res FAIL l2-boot "no L2-READY within 240 s"
	qmp '{"execute":"quit"}' 10; dump_logs; exit 1
fi
say "L2 ready after $(elapsed "$L2_T0") s; $(grep -m1 '^L2-BOOT-OK' $L2LOG)"
if [ "$PATCHED" != 1 ]; then
	# Only QEMU can hook its VM: KVM refuses the VM ioctls of another
	# process (kvm->mm != current->mm: EIO). Debian's QEMU runs L2 only.
	res SKIP introspection "Debian's QEMU has no introspection object: build the patched one (make qemu)"
	qmp '{"execute":"quit"}' 10 >/dev/null 2>&1
	wait_gone $QEMU_PID 30
	kill $WD_PID $STREAMS 2>/dev/null
	dump_logs
	exit 0
fi
pat=$(tr -d '\r' <$L2LOG | sed -n 's/^L2-PATTERN gpa=\(0x[0-9a-f]*\) token=\([0-9a-f]*\).*/\1 \2/p' | head -1)
gpa=${pat% *} token=${pat#* }
banner=$(tr -d '\r' <$L2LOG | sed -n 's/^L2-VERSION //p' | head -1)

t=$(now)
start_tool --key "$KEY" --once --cr3 200 --cr3-time 10 --regs --banner --protect ${gpa:+--dump $gpa:64} --map-token
wait_for $TOOL_LOG '^waiting for events' 300
say "demo done in $(elapsed "$t") s"
check handshake "the tool did not get KVMI_GET_VERSION through (key)" grep -q '^KVMI version 1,' $TOOL_LOG
check vm-info "no vCPU count" grep -q '^1 vCPU' $TOOL_LOG
check registers "no registers of the paused vCPU" grep -q 'MSR_LSTAR (syscall entry) 0xffff' $TOOL_LOG
check syscall-entry "the code at LSTAR is not the syscall entry" grep -q 'starts with swapgs' $TOOL_LOG
tb=$(sed -n 's/^  banner: //p' $TOOL_LOG)
same() { [ -n "$1" ] && [ "$1" = "$2" ]; }
starts_with() { case "$1" in "$2"*) return 0 ;; esac; return 1; }
check banner "tool: '$tb', guest: '$banner'" same "$tb" "$banner"
if [ -n "$gpa" ]; then
	# The ASCII column of the dump, joined.
	text=$(sed -n '/^guest memory at gpa/,/^[^ ]/s/^  [0-9a-f]*:.*|\(.*\)|$/\1/p' $TOOL_LOG | tr -d '\n')
	check read-memory "the guest's pattern (token $token at $gpa) is not in the dump: '$text'" \
		starts_with "$text" "KVMI-E2E $token 0000"
else
	res FAIL read-memory "the guest printed no L2-PATTERN"
fi
n=$(sed -n 's/^  \([0-9]*\) CR3 writes.*/\1/p' $TOOL_LOG)
check cr3-events "CR3 writes counted: ${n:-none}" test "${n:-0}" -gt 0
check pf-event "no PF event for the write-protected page" grep -q 'PF event after .*: write access' $TOOL_LOG
check pf-lifted "the protection was not lifted" grep -q 'protection lifted' $TOOL_LOG
a1=$(alive); sleep 3; a2=$(alive)
check guest-runs "L2-ALIVE $a1 -> $a2" test "${a2:-0}" -gt "${a1:-0}"

# --- an introspector VM reads the banner through /dev/kvmmem, with the map
# token of the tool's session: one case per check of kvmmem-e2e
mt=$(sed -n 's/^map token: \([0-9a-f]*\)$/\1/p' $TOOL_LOG | head -1)
bg=$(sed -n '/^looking for the kernel banner/,$s/^  found at gpa \(0x[0-9a-f]*\).*/\1/p' $TOOL_LOG | head -1)
if [ "$INTROSPECTOR" != 1 ]; then
	res SKIP introspector-vm "KVMI_E2E_INTROSPECTOR=0"
elif [ -z "$mt" ] || [ -z "$bg" ]; then
	res FAIL introspector-vm "no map token ('$mt') or banner gpa ('$bg') from the tool"
else
	say "before: $(slabs)"
	start_l2i "$mt" "$bg"
	( while :; do
		# Stop the VM before L1 runs out of memory, with the figures.
		if [ "$(mem_avail)" -lt 262144 ]; then
			say "MemAvailable $(mem_avail) kB: stopping the introspector VM; $(slabs)"
			kill -KILL $L2I_PID
			break
		fi
		sleep 2
	done ) &
	MEMW=$!
	wait_for $L2ILOG '^KVMMEM-DONE|^L2I-EXIT' 240
	wait_gone $L2I_PID 30 || kill -KILL $L2I_PID 2>/dev/null
	say "introspector VM done after $(elapsed "$L2I_T0") s"
	kill $MEMW 2>/dev/null
	say "after: $(slabs)"
	check introspector-vm "no KVMMEM-DONE from the introspector VM" grep -q '^KVMMEM-DONE' $L2ILOG
	tr -d '\r' <$L2ILOG | sed -n '/^KVMMEM-CASE /{s/^KVMMEM-CASE //;s/ (\(.*\))$/ \1/;p}' >/tmp/kvmmem.cases
	while read -r st name why; do
		res "$st" "kvmmem-$name" ${why:+"$why"}
	done </tmp/kvmmem.cases
	kb=$(tr -d '\r' <$L2ILOG | sed -n 's/^KVMMEM-BANNER //p' | head -1)
	check introspector-banner "introspector VM: '$kb', guest: '$banner'" same "$kb" "$banner"
fi

# --- stop -> UNHOOK event -> the tool lifts its hooks and closes -> stop ends
t=$(now)
qmp '{"execute":"stop"}' 90 >/tmp/qmp-stop.log 2>&1; rc=$?
wait_for $TOOL_LOG '^session closed' 10
say "stop took $(elapsed "$t") s"
check stop-unhook "stop: rc $rc, tool: $(grep -cE 'UNHOOK|hooks lifted|session closed' $TOOL_LOG)/3 markers" \
	sh -c "[ $rc = 0 ] && grep -q 'KVMI_VM_EVENT_UNHOOK' $TOOL_LOG && grep -q '^hooks lifted' $TOOL_LOG && grep -q '^session closed' $TOOL_LOG"
usleep 500000
check tool-exit "the tool (--once) did not exit" tool_exited

# --- cont -> the device manager connects again, a new tool hooks
start_tool --key "$KEY" --cr3 100000000 --cr3-time 600
t=$(now)
qmp '{"execute":"cont"}' 30 >/dev/null 2>&1
wait_for $TOOL_LOG '^  CR3 write' 60
check cont-rehook "after cont, no new session with CR3 events ($(elapsed "$t") s)" grep -q '^  CR3 write' $TOOL_LOG

# --- the tool stopped (SIGSTOP) with a vCPU waiting for its reply, then killed
kill -STOP $TOOL_PID
sleep 2
a1=$(alive); sleep 2; a2=$(alive)
say "tool stopped: L2-ALIVE $a1 -> $a2 (a vCPU waits for a reply)"
ncl=$(count "$(dm_log)" 'closed|unhook')
kill -KILL $TOOL_PID; wait $TOOL_PID 2>/dev/null; TOOL_PID=
t=$(now)
wait_for $L2LOG "^L2-ALIVE $((a2 + 3))" 30
check kill-mid-event "the guest did not go on after the tool was killed (L2-ALIVE $a2 -> $(alive))" \
	test "$(alive)" -ge $((a2 + 3))
check kill-unhook "the device manager did not unhook after the kill" \
	sh -c "[ $(count "$(dm_log)" 'closed|unhook') -gt $ncl ]"

# --- a wrong key: the device manager drops the connection, KVM never sees it
start_tool --key wrong-key --once --regs
wait_for $TOOL_LOG '^session closed|^handshake failed' 30
check wrong-key "the tool got a session with a wrong key" \
	sh -c "! grep -q '^KVMI version' $TOOL_LOG && grep -qE 'wrong key|handshake failed' $TOOL_LOG"
stop_tool

# --- allow-lists: READ_PHYSICAL (12) and the PF event (17) denied
qmp '{"execute":"object-del","arguments":{"id":"kvmi"}}' 30 2>&1 | sed 's/^/[e2e] /'
qmp '{"execute":"object-add","arguments":{"qom-type":"introspection","id":"kvmi","chardev":"kvmichr","key":"kvmikey","command":[2,4,6,8,10,14,16,18,20,22,3,5,7,9,11,13,15,17,19,21,23,25,27,29],"event":[0,1,3,5,7,9,11,13,15,19]}}' 30 2>&1 | sed 's/^/[e2e] /'
start_tool --key "$KEY" --once --force --banner
wait_for $TOOL_LOG '^waiting for events' 60
check allow-list-check "KVMI_VM_CHECK_COMMAND/EVENT did not report the denied ids" \
	sh -c "grep -q 'KVMI_VM_READ_PHYSICAL: not available: Operation not permitted' $TOOL_LOG && grep -q 'KVMI_VCPU_EVENT_PF: not available: Operation not permitted' $TOOL_LOG"
check allow-list-eperm "KVMI_VM_READ_PHYSICAL did not fail with -KVM_EPERM" \
	grep -q 'KVMI_VM_READ_PHYSICAL.*error -1: Operation not permitted' $TOOL_LOG
check allow-list-allowed "an allowed command failed" grep -q '^1 vCPU' $TOOL_LOG
stop_tool
check sigterm "the tool did not lift its hooks on SIGTERM" \
	sh -c "grep -q '^signal 15' $TOOL_LOG && grep -q '^hooks lifted' $TOOL_LOG"
qmp '{"execute":"object-del","arguments":{"id":"kvmi"}}' 30 2>&1 | sed 's/^/[e2e] /'
qmp '{"execute":"object-add","arguments":{"qom-type":"introspection","id":"kvmi","chardev":"kvmichr","key":"kvmikey"}}' 30 2>&1 | sed 's/^/[e2e] /'

# --- a guest reset while hooked (CR3 events on)
start_tool --key "$KEY" --once --cr3 100000000 --cr3-time 600
wait_for $TOOL_LOG '^  CR3 write' 60
boots=$(count $L2LOG '^L2-BOOT-OK')
t=$(now)
qmp '{"execute":"system_reset"}' 30 >/dev/null
end=$(deadline 300)
while [ "$(count $L2LOG '^L2-READY')" -lt 2 ] && ! past $end; do usleep 500000; done
say "reset: L2 ready again after $(elapsed "$t") s"
check reset "the guest did not boot again after system_reset" test "$(count $L2LOG '^L2-READY')" -ge 2
check reset-unhook "QEMU did not unhook on reset" grep -q '^session closed' $TOOL_LOG

# --- quit while hooked: VM destruction unhooks
# QEMU unhooked on reset and connects again: give it a tool.
start_tool --key "$KEY" --once --cr3 100000000 --cr3-time 600
wait_for $TOOL_LOG '^  CR3 write' 60
t=$(now)
qmp '{"execute":"quit"}' 30 >/dev/null 2>&1
wait_gone $QEMU_PID 60
wait_for $TOOL_LOG '^session closed' 10
check quit-hooked "QEMU did not exit, or the tool did not see the end ($(elapsed "$t") s)" \
	sh -c "! kill -0 $QEMU_PID 2>/dev/null && grep -q '^session closed' $TOOL_LOG"
stop_tool
say "all cases done"
kill $WD_PID $STREAMS 2>/dev/null
dump_logs
