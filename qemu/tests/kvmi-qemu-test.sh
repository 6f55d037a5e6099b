#!/bin/sh
# The QEMU introspection test, run inside the L1 guest (our KVMI kernel under
# QEMU TCG, /dev/kvm = nested SVM): the patched qemu-system-x86_64 runs an L2
# guest with -enable-kvm and an introspection object, kvmi-hs-tool plays the
# tool side of the handshake and talks to KVM, and QMP drives the VM.
#   kvmi-qemu-test.sh main        the KVMI scenarios (kvm.introspection=1)
#   kvmi-qemu-test.sh param-off   the error when kvm.introspection=0
# Prints "KVMI-QEMU-RESULT PASS|FAIL name [(why)]" per case, and the logs.
# Needs: /usr/bin/qemu-system-x86_64 (+ libraries), qboot.rom in
# /usr/share/qemu, /l2/bzImage, /l2/initrd.gz, /bin/kvmi-hs-tool, and
# /etc/kvmi-cookie (the SHA-1 hex of the secret "s3cret").

QEMU=/usr/bin/qemu-system-x86_64
TOOL=/bin/kvmi-hs-tool
UUID=8b3f6ac2-3c8d-4b95-9a4f-4e2a6cb6c1a7
T=/tmp/kvmi
mkdir -p $T

result() { # PASS|FAIL name [why]
	if [ -n "$3" ]; then echo "KVMI-QEMU-RESULT $1 $2 ($3)"; else echo "KVMI-QEMU-RESULT $1 $2"; fi
}
check() { # name why command...
	name=$1 why=$2; shift 2
	if "$@"; then result PASS "$name"; else result FAIL "$name" "$why"; fi
}
# wait_for FILE PATTERN SECONDS
wait_for() {
	n=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt $(($3 * 5)) ] && return 1
		sleep 0.2
	done
	return 0
}
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
# wait_count FILE PATTERN N SECONDS: until PATTERN is there N times
wait_count() {
	n=0
	while [ "$(count "$1" "$2")" -lt "$3" ]; do
		n=$((n + 1))
		[ $n -gt $(($4 * 5)) ] && return 1
		sleep 0.2
	done
	return 0
}
qmp() { # name command... (appends to $T/qmp-NAME.log)
	q=$1; shift
	timeout 120 $TOOL qmp $T/qmp-$q.sock "$@" >>$T/qmp-$q.log 2>&1
}
show() { # name file
	echo "---- $1 ----"
	sed "s/^/[$1] /" "$2" 2>/dev/null
}
# start_qemu NAME EXTRA-ARGS...: an L2 guest with an introspection object
start_qemu() {
	q=$1; shift
	set -- $QEMU -enable-kvm -cpu host -m 256 -smp 1 \
		-M microvm,x-option-roms=off,rtc=off -bios /usr/share/qemu/qboot.rom \
		-kernel /l2/bzImage -initrd /l2/initrd.gz \
		-append "console=ttyS0 panic=-1 quiet" \
		-display none -monitor none -serial file:$T/l2-$q.log \
		-qmp unix:$T/qmp-$q.sock,server=on,wait=off \
		-uuid $UUID -name "l2-$q" "$@"
	# kvmiqemu.gdb on the kernel command line (KVMI_QEMU_TEST_GDB=1): run
	# QEMU under gdb, which prints a backtrace if it crashes
	if [ -x /usr/bin/gdb ] && grep -q kvmiqemu.gdb /proc/cmdline; then
		set -- /usr/bin/gdb -q -batch -ex "set pagination off" \
			-ex "handle SIGUSR1 SIGUSR2 SIGPIPE nostop noprint pass" \
			-ex run -ex bt --args "$@"
	fi
	"$@" >$T/qemu-$q.log 2>&1 &
	echo $! >$T/qemu-$q.pid
}
stop_qemu() {
	qmp "$1" '{"execute":"quit"}'
	pid=$(cat $T/qemu-$1.pid)
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
	kill -9 "$pid" 2>/dev/null
}
# the line number of the first match (0 if none)
line_of() { grep -n -- "$2" "$1" 2>/dev/null | head -n1 | cut -d: -f1 | grep . || echo 0; }
# the CLOCK_MONOTONIC stamp of the first matching line of a tool/qmp log
stamp() { grep -- "$2" "$1" 2>/dev/null | head -n1 | sed -n 's/^[a-z]*: \[ *\([0-9.]*\)\].*/\1/p'; }
before() { # is stamp $1 < stamp $2 (both non-empty)?
	[ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'
}

KVMI="-chardev socket,id=kvmi0,path=$T/kvmi.sock,reconnect=1"

main() {
	COOKIE=$(cat /etc/kvmi-cookie)
	echo "host: $(uname -r), /dev/kvm: $(ls -l /dev/kvm), kvm.introspection=$(cat /sys/module/kvm/parameters/introspection)"

	######## A: no key; stop/cont, ENOENT, reset, object-del/add, tool close, CRASH
	L=$T/tool-a.log
	$TOOL listen $T/kvmi.sock --count 6 --unhook-delay 2000 \
		--modes unhook,wait,wait,wait,close,crash >$L 2>&1 &
	start_qemu a -action panic=pause $KVMI -object introspection,id=kvmi,chardev=kvmi0
	Q=$T/qmp-a.log QL=$T/qemu-a.log

	wait_for $L "GET_VERSION: ok" 120
	check handshake-nokey "no hello/reply" grep -q "hello: struct_size=104 uuid=$(echo $UUID | tr -d -) .*name=\"l2-a\" max_gpa=0x" $L
	check hook "QEMU did not hook" grep -q "the tool is hooked" $QL
	check get-version "GET_VERSION not answered by KVM" grep -q "GET_VERSION: ok, answered by KVM: version=1" $L
	wait_for $L "VM_CONTROL_EVENTS(UNHOOK, enable): err=0" 30

	# stop: PREUNHOOK -> UNHOOK event -> the tool removes its hooks (2 s)
	# and closes -> QEMU unhooks -> the VM stops -> the QMP reply
	qmp a '{"execute":"stop"}' '{"execute":"query-status"}'
	check preunhook-stop-event "no UNHOOK event" grep -q "UNHOOK event received" $L
	check stop-reply-after-unhook "the stop reply came before the tool closed" \
		before "$(stamp $L 'hooks removed, closing')" "$(stamp $Q '<- {"return": {}}')"
	check stop-paused "not paused after stop" grep -q '"status": "paused"' $Q
	check qemu-unhook-on-close "QEMU did not report the unhook" grep -q "waiting up to 60 s for the tool to unhook (stop)" $QL

	# no reconnection while stopped (reconnect=1)
	sleep 4
	check no-reconnect-while-stopped "a connection was made while stopped" \
		test "$(count $L 'connection 2 accepted')" = 0

	qmp a '{"execute":"cont"}'
	wait_for $L "connection 2 accepted" 30
	wait_for $L "GET_VERSION: ok" 30
	check reconnect-after-cont "no new hook after cont" test "$(count $L 'hooked: KVM serves')" = 2

	# the tool did not enable the UNHOOK event: PREUNHOOK fails with
	# ENOENT, QEMU unhooks at once
	sleep 1
	qmp a '{"execute":"stop"}'
	check preunhook-enoent-unhook "the tool was not unhooked" \
		wait_for $L "connection 2 closed by the other end" 10
	check preunhook-enoent-fast "stop waited" test "$(count $QL 'waiting up to')" = 1
	qmp a '{"execute":"cont"}'
	wait_for $L "connection 3 accepted" 30
	wait_for $L "GET_VERSION: ok" 30
	check rehook-3 "no third hook" test "$(count $L 'hooked: KVM serves')" = 3

	# a guest reset unhooks the tool; the chardev connects again
	sleep 1
	qmp a '{"execute":"system_reset"}'
	check reset-unhook "no unhook on reset" wait_for $L "connection 3 closed by the other end" 10
	check reset-rehook "no new hook after the reset" wait_count $L "hooked: KVM serves" 4 60
	sleep 1

	# object-del unhooks and disconnects; object-add connects again;
	# a second object is refused
	qmp a '{"execute":"object-del","arguments":{"id":"kvmi"}}'
	check object-del-unhook "no unhook on object-del" wait_for $L "connection 4 closed by the other end" 10
	qmp a '{"execute":"object-add","arguments":{"qom-type":"introspection","id":"kvmi2","chardev":"kvmi0","command":[2,4,6,8,10,16],"event":[0,1]}}' \
		'{"execute":"object-add","arguments":{"qom-type":"introspection","id":"kvmi3","chardev":"kvmi0"}}'
	check second-object "a second object was not refused" grep -q "only one introspection object is allowed" $Q
	check object-add "no hook after object-add" wait_for $L "connection 5 accepted" 30
	wait_for $L "closing connection 5" 30

	# the tool closes the connection: QEMU unhooks and connects again
	check tool-close-unhook "QEMU did not unhook on close" \
		wait_count $QL "the connection with the tool is closed, unhooking" 2 10
	wait_for $L "connection 6 accepted" 30

	# CRASH: PAUSE_VCPU, the PAUSE event is answered with CRASH -> KVM exits
	# with KVM_SYSTEM_EVENT_CRASH -> guest-panicked
	wait_for $L "PAUSE event from vCPU" 60
	sleep 2
	qmp a '{"execute":"query-status"}'
	check crash-guest-panicked "no guest-panicked" grep -q '"status": "guest-panicked"' $Q
	stop_qemu a
	show tool-a $L; show qmp-a $Q; show qemu-a $QL

	######## B: key: a wrong cookie is refused, the right one is hooked
	L=$T/tool-b.log
	( $TOOL listen $T/kvmi.sock --count 1 --modes wait >$L 2>&1
	  echo "(the tool with the wrong cookie is gone)" >>$L ) &
	start_qemu b -object secret,id=kvmikey,data=s3cret $KVMI \
		-object introspection,id=kvmi,chardev=kvmi0,key=kvmikey
	wait_for $T/qemu-b.log "wrong cookie hash" 120
	check key-wrong-cookie "a wrong cookie was accepted" grep -q "wrong cookie hash" $T/qemu-b.log
	wait_for $L "the tool with the wrong cookie is gone" 30
	L2=$T/tool-b2.log
	$TOOL listen $T/kvmi.sock --count 1 --modes close --cookie "$COOKIE" >$L2 2>&1 &
	wait_for $L2 "GET_VERSION: ok" 60
	check key-right-cookie "not hooked with the right cookie" grep -q "GET_VERSION: ok, answered by KVM" $L2
	stop_qemu b
	show tool-b $L; show tool-b2 $L2; show qemu-b $T/qemu-b.log

	######## C: bad replies: struct_size < 24, and no reply (handshake_timeout)
	L=$T/tool-c.log
	$TOOL listen $T/kvmi.sock --count 2 --modes badsize,noreply >$L 2>&1 &
	start_qemu c $KVMI -object introspection,id=kvmi,chardev=kvmi0,handshake_timeout=3
	wait_for $L "connection 2 closed by QEMU" 120
	check reply-too-short "struct_size 8 was accepted" grep -q "invalid handshake reply size 8" $T/qemu-c.log
	check handshake-timeout "no handshake timeout" grep -q "no handshake reply from the tool within 3 s" $T/qemu-c.log
	stop_qemu c
	show tool-c $L; show qemu-c $T/qemu-c.log

	######## E: HMP stop (asynchronous) and a migration unhook first too
	L=$T/tool-e.log
	$TOOL listen $T/kvmi.sock --count 3 --unhook-delay 2000 --modes unhook,unhook,wait >$L 2>&1 &
	start_qemu e $KVMI -object introspection,id=kvmi,chardev=kvmi0
	Q=$T/qmp-e.log QL=$T/qemu-e.log
	wait_for $L "VM_CONTROL_EVENTS(UNHOOK, enable): err=0" 120
	# HMP stop (human-monitor-command runs outside a coroutine): it returns
	# at once, the VM stops once the tool has unhooked
	qmp e '{"execute":"human-monitor-command","arguments":{"command-line":"stop"}}' \
		'{"execute":"query-status"}'
	check hmp-stop-returns-at-once "the VM stopped before the tool unhooked" \
		grep -q '"status": "running"' $Q
	wait_for $L "hooks removed, closing" 20
	sleep 1
	qmp e '{"execute":"query-status"}'
	check hmp-stop-paused-after-unhook "not paused after the unhook" grep -q '"status": "paused"' $Q
	qmp e '{"execute":"cont"}'
	wait_count $L "VM_CONTROL_EVENTS(UNHOOK, enable): err=0" 2 30
	# migration: the migration thread waits in "setup" until the tool has
	# unhooked, the guest still runs meanwhile
	qmp e '{"execute":"migrate","arguments":{"uri":"exec:cat >/dev/null"}}' \
		'{"execute":"query-migrate"}' '{"execute":"query-status"}'
	check migrate-waits-for-unhook "the migration did not wait in setup" \
		grep -q '"status": "setup"' $Q
	check migrate-unhook-event "no UNHOOK event at migration" \
		wait_count $L "UNHOOK event received" 2 20
	n=0
	while [ $n -lt 60 ] && ! grep -q '"status": "completed"' $Q; do
		sleep 1; n=$((n + 1)); qmp e '{"execute":"query-migrate"}'
	done
	check migrate-completed "the migration did not complete" grep -q '"status": "completed"' $Q
	check migrate-qemu-waited "QEMU did not wait for the unhook" \
		grep -q "waiting up to 60 s for the tool to unhook (migrate)" $QL
	sleep 3
	check no-reconnect-after-migration "a connection after the migration" \
		test "$(count $L 'accepted')" = 2
	stop_qemu e
	show tool-e $L; show qmp-e $Q; show qemu-e $QL

	######## D: configuration errors: QEMU must refuse to start
	timeout 30 $QEMU -enable-kvm -M microvm -bios /usr/share/qemu/qboot.rom -display none -chardev socket,id=c,path=$T/s.sock,server=on,wait=off \
		-object introspection,id=i,chardev=c >$T/err-server.log 2>&1
	check error-server-chardev "a server chardev was accepted" grep -q "is a server socket" $T/err-server.log
	timeout 30 $QEMU -enable-kvm -M microvm -bios /usr/share/qemu/qboot.rom -display none -chardev null,id=c \
		-object introspection,id=i,chardev=c >$T/err-null.log 2>&1
	check error-not-socket "a null chardev was accepted" grep -q "is not a socket" $T/err-null.log
	timeout 30 $QEMU -enable-kvm -M microvm -bios /usr/share/qemu/qboot.rom -display none $KVMI -chardev socket,id=k1,path=$T/k1.sock,reconnect=1 \
		-object introspection,id=i,chardev=kvmi0 -object introspection,id=j,chardev=k1 >$T/err-two.log 2>&1
	check error-second-object "two objects were accepted" grep -q "only one introspection object is allowed" $T/err-two.log
	for f in err-server err-null err-two; do show $f $T/$f.log; done
}

param_off() {
	echo "kvm.introspection=$(cat /sys/module/kvm/parameters/introspection)"
	timeout 30 $QEMU -enable-kvm -M microvm -bios /usr/share/qemu/qboot.rom -display none $KVMI \
		-object introspection,id=kvmi,chardev=kvmi0 >$T/err-off.log 2>&1
	check error-param-off "no kvm.introspection hint" grep -q "kvm.introspection=1" $T/err-off.log
	show err-off $T/err-off.log
}

# system_reset with and without an introspection object
reset_probe() {
	start_qemu r0
	sleep 8
	qmp r0 '{"execute":"system_reset"}'
	sleep 3
	qmp r0 '{"execute":"query-status"}'
	check reset-without-object "QEMU died on reset" grep -q '"status": "running"' $T/qmp-r0.log
	stop_qemu r0
	show qmp-r0 $T/qmp-r0.log; show qemu-r0 $T/qemu-r0.log
	L=$T/tool-r1.log
	$TOOL listen $T/kvmi.sock --count 2 --modes wait >$L 2>&1 &
	start_qemu r1 $KVMI -object introspection,id=kvmi,chardev=kvmi0
	wait_for $L "GET_VERSION: ok" 120
	sleep 3
	qmp r1 '{"execute":"system_reset"}'
	sleep 5
	qmp r1 '{"execute":"query-status"}'
	check reset-with-object "QEMU died on reset" grep -q '"status": "running"' $T/qmp-r1.log
	stop_qemu r1
	show tool-r1 $L; show qmp-r1 $T/qmp-r1.log; show qemu-r1 $T/qemu-r1.log
}

case "$1" in
main) main ;;
reset-probe) reset_probe ;;
param-off) param_off ;;
*) echo "usage: $0 main|param-off|reset-probe"; exit 2 ;;
esac
