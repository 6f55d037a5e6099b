#!/bin/bash
# Generate the .config of an O= dir (default $KVMI_CACHE/build/<flavor>) from
# tinyconfig + scripts/config/{base,<flavor>}.config, verify every requested
# symbol, and replace the real .config only if it changed.
#   kconfig.sh FLAVOR [O]
# KVMI_CONFIG_LAX=1 turns missing-symbol errors into warnings (development only).
# KVMI_CONFIG_UNDEFINED_OK=1 (the bisect check) leaves out, with a note, a
# requested symbol that no Kconfig of the tree defines (yet); a defined symbol
# that cannot be set is still an error. KVMI_SRC / KVMI_MANIFEST point it at
# another source tree and its list of files that differ from pristine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavor=${1:?usage: kconfig.sh runtime|bochs|modules|nokvmi [O]}
frags=("$REPO/scripts/config/base.config" "$REPO/scripts/config/$flavor.config")
for f in "${frags[@]}"; do [[ -f $f ]] || die "missing config fragment $f"; done
[[ -f $SRC/Makefile ]] || die "$SRC is not assembled (run scripts/assemble.sh)"
manifest=${KVMI_MANIFEST:-$STATE/manifest}
undef_ok=${KVMI_CONFIG_UNDEFINED_OK:-0}

O=${2:-$BUILD/$flavor}
T=$(dirname "$O")/.kconfig-$(basename "$O")   # scratch dir: keeps the kconfig host tools built
mkdir -p "$O" "$T"

# Skip regeneration when nothing that can change the result changed: pristine
# version, compiler, fragments, and the content of Kconfig files the series touches.
key=$( {
	pristine_version; echo "$SRC"; gcc --version | head -1; cat "${frags[@]}"
	{ grep -E '(^|/)Kconfig[^/]*$' "$manifest" 2>/dev/null || true; } | while IFS= read -r f; do
		echo "$f"; cat "$SRC/$f" 2>/dev/null || true
	done
} | sha256sum | cut -d' ' -f1)
# The key file also says whether a symbol was left out (KVMI_CONFIG_UNDEFINED_OK):
# such a config is reused only by a run that allows it.
read -r okey oleft 2>/dev/null <"$O/.kvmi-config-key" || true
if [[ -f $O/.config && ${okey:-} == "$key" && (${oleft:-0} == 0 || $undef_ok == 1) ]]; then
	exit 0
fi

"${KMAKE[@]}" O="$T" tinyconfig >"$T/log" 2>&1 || { cat "$T/log"; die "tinyconfig failed"; }
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$T" "$T/.config" "${frags[@]}" >>"$T/log" 2>&1 ||
	{ cat "$T/log"; die "merge_config.sh failed"; }
"${KMAKE[@]}" O="$T" olddefconfig >>"$T/log" 2>&1 || { cat "$T/log"; die "olddefconfig failed"; }

# Verify: every CONFIG_X=v must be set exactly; every "# CONFIG_X is not set" must be off.
bad=0 left_out=0
while IFS= read -r line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		sym=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
		grep -qxF "$sym=$want" "$T/.config" && continue
		have=$(grep -E "^$sym=|^# $sym is not set" "$T/.config" || echo "absent")
		if ! grep -rqsxE "(menu)?config ${sym#CONFIG_}" --include='Kconfig*' "$SRC/arch/x86" "$SRC/virt" \
				"$SRC/lib" "$SRC/kernel" "$SRC/mm" "$SRC/init" "$SRC/drivers/tty" "$SRC/drivers/virt" "$SRC/fs" "$SRC/net" \
				"$SRC/usr" "$SRC/security" "$SRC/block" "$SRC/samples" "$SRC/Kconfig" 2>/dev/null; then
			if [[ $undef_ok == 1 ]]; then
				echo "config[$flavor]: note: no Kconfig defines ${sym#CONFIG_} yet, $sym=$want left out" >&2
				left_out=1; continue
			fi
			echo "config[$flavor]: $sym=$want requested, but no Kconfig defines ${sym#CONFIG_}" \
			     "(has the patch adding it landed in patches/series?)" >&2
		else
			echo "config[$flavor]: $sym=$want requested, got: $have (unmet dependency?)" >&2
		fi
		bad=1
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
		sym=${BASH_REMATCH[1]}
		if grep -qE "^$sym=" "$T/.config"; then
			echo "config[$flavor]: $sym must be off, got: $(grep -E "^$sym=" "$T/.config")" >&2
			bad=1
		fi
	fi
done < <(cat "${frags[@]}")

if ((bad)); then
	if [[ ${KVMI_CONFIG_LAX:-0} == 1 ]]; then
		warn "config[$flavor]: symbol check failed, continuing because KVMI_CONFIG_LAX=1"
	else
		die "config[$flavor]: requested symbols are not set (see above)"
	fi
fi

if ! cmp -s "$T/.config" "$O/.config"; then
	cp "$T/.config" "$O/.config"
	log "config[$flavor]: updated $O/.config"
fi
# Remember the key only for a fully verified config, so a lax run is re-checked.
# (with left_out=1 when a symbol was left out, so that a strict run verifies it again).
if ((bad)); then rm -f "$O/.kvmi-config-key"; else echo "$key $left_out" >"$O/.kvmi-config-key"; fi
