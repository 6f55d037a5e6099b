# Common helpers for the KVMI harness. Source this, do not run it.
# shellcheck shell=bash

# Repo root (this file lives in scripts/).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Cache and build locations (override with env vars).
CACHE=${KVMI_CACHE:-/var/cache/kvmi}
# The assembled tree (KVMI_SRC is internal: the bisect check points the
# helper scripts at its own source dir with it).
SRC=${KVMI_SRC:-$CACHE/src}
STATE=$CACHE/state
BUILD=$CACHE/build
OUT=${KVMI_OUT:-$REPO/out}
JOBS=${KVMI_JOBS:-$(nproc)}

# ccache + reproducible build identity for every kernel/selftest compile.
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=$CACHE
export CCACHE_NOHASHDIR=1
export KBUILD_BUILD_TIMESTAMP=${KBUILD_BUILD_TIMESTAMP:-"Thu Jan  1 00:00:00 UTC 2025"}
export KBUILD_BUILD_USER=kvmi
export KBUILD_BUILD_HOST=kvmi
export KBUILD_BUILD_VERSION=1
export LC_ALL=C

# make arguments shared by all kernel builds.
KMAKE=(make -s -C "$SRC" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS")

log()  { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Debian version of the installed linux-source-6.12 package, e.g. 6.12.117-1~deb12u1.
pristine_version() {
	dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null ||
		die "linux-source-6.12 is not installed (run scripts/deps.sh)"
}

pristine_dir() { echo "$CACHE/pristine/$(pristine_version)"; }

# Patch files in series order (strips comments and blank lines).
series_patches() {
	local s=$REPO/patches/series
	[[ -f $s ]] || return 0
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$s"
}

# Paths a patch touches (old and new names, minus a/ b/ prefixes).
patch_paths() {
	awk '/^diff --git /{ sub(/^a\//,"",$3); sub(/^b\//,"",$4); print $3; print $4; next }
	     /^(---|\+\+\+) [ab]\//{ p=$2; sub(/^[ab]\//,"",p); print p }' "$1" | sort -u
}

# Fixed date of the commits the harness makes (base, series commits): the same
# patches give the same commit hashes on every machine.
KVMI_DATE="2025-01-01T00:00:00Z"

# Upstream version of the pristine tree, e.g. 6.12.118.
pristine_upstream() {
	sed -nE 's/^(VERSION|PATCHLEVEL|SUBLEVEL) = ([0-9]+)$/\2/p' "$(pristine_dir)/Makefile" | paste -sd.
}

# Unpack linux-source-6.12 into pristine/<deb version>/, once per version.
ensure_pristine() {
	local version pristine tmp top
	version=$(pristine_version); pristine=$(pristine_dir)
	[[ -f $pristine/.kvmi-pristine-ok ]] && return 0
	log "unpacking linux-source $version into $pristine"
	mkdir -p "$CACHE/tmp"
	tmp=$(mktemp -d "$CACHE/tmp/unpack.XXXXXX")
	tar -C "$tmp" -xJf /usr/src/linux-source-6.12.tar.xz
	top=("$tmp"/*)
	((${#top[@]} == 1)) && [[ -f ${top[0]}/Makefile ]] || die "unexpected layout of linux-source tarball"
	rm -rf "$pristine"; mkdir -p "$(dirname "$pristine")"
	mv "${top[0]}" "$pristine"; rmdir "$tmp"
	touch "$pristine/.kvmi-pristine-ok"
}

# Every file patches/series lists must exist; a patch file it does not list is
# ignored (with a warning).
check_series() {
	local p f
	local -A listed=()
	while IFS= read -r p; do
		[[ -f $REPO/patches/$p ]] || die "patches/series lists '$p' but patches/$p does not exist"
		listed[$p]=1
	done < <(series_patches)
	for f in "$REPO"/patches/*.patch; do
		[[ -f $f && -z ${listed[${f##*/}]:-} ]] || continue
		warn "patches/${f##*/} is not in patches/series (ignored)"
	done
}

# Full paths of the series' patch files, in order.
series_files() { series_patches | sed "s|^|$REPO/patches/|"; }

# Every path the series touches (old and new names), sorted. Run check_series first.
series_paths() {
	local p
	series_patches | while IFS= read -r p; do patch_paths "$REPO/patches/$p"; done |
		grep -v -e '^$' -e '^/dev/null$' | sort -u || true
}

# The paths that the series adds (new files), sorted.
series_new_files() {
	local p
	series_patches | while IFS= read -r p; do
		awk '/^diff --git /{f=$4; sub(/^b\//, "", f)} /^new file mode/{print f}' \
			"$REPO/patches/$p"
	done | sort -u || true
}

# Content hash of the series (the patches, in order; names and comments do not count).
series_key() {
	local p
	series_patches | while IFS= read -r p; do sha256sum <"$REPO/patches/$p"; done |
		sha256sum | cut -c1-64
}

# Mini-trees. stage_init STAGE LIST: STAGE gets the pristine copies of the paths
# listed in the file LIST (the ones that exist upstream).
stage_init() {
	local stage=$1 list=$2 pristine f
	pristine=$(pristine_dir)
	rm -rf "$stage"; mkdir -p "$stage"
	git init -q "$stage"   # so that git apply works relative to STAGE, wherever it is
	while IFS= read -r f; do
		if [[ -f $pristine/$f ]]; then
			mkdir -p "$stage/$(dirname "$f")"; cp -p "$pristine/$f" "$stage/$f"
		fi
	done <"$list"
}

# stage_apply STAGE PATCHFILE: apply one patch with git apply (new files, mode
# changes, renames and deletions work; no fuzz: a hunk whose context does not
# match exactly rejects the whole patch). Errors go to stderr, status 1.
stage_apply() {
	local out
	if ! out=$(cd "$1" && git apply --whitespace=nowarn "$2" 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
	[[ -z $out ]] || printf '[%s] %s\n' "${2##*/}" "$out" >&2
}

# stage_sync STAGE DEST LIST MANIFEST [quiet]: make DEST match STAGE for every
# path in LIST, writing only files whose content or mode differs (so make
# rebuilds only what changed) and deleting the paths STAGE lacks (files that
# dropped out of the series). MANIFEST gets the paths where DEST now differs
# from pristine. Sets SYNC_CHANGED to the number of files changed and
# SYNC_PATHS to their paths.
SYNC_CHANGED=0 SYNC_PATHS=()
stage_sync() {
	local stage=$1 dest=$2 list=$3 manifest=$4 quiet=${5:-} pristine f s d changed=0
	pristine=$(pristine_dir)
	SYNC_PATHS=()
	: >"$manifest.tmp"
	while IFS= read -r f; do
		s=$stage/$f d=$dest/$f
		if [[ -f $s ]]; then
			if [[ ! -f $d ]] || ! cmp -s "$s" "$d" || [[ $(stat -c %a "$s") != $(stat -c %a "$d") ]]; then
				mkdir -p "$(dirname "$d")"; rm -f "$d"
				cp "$s" "$d"; chmod "$(stat -c %a "$s")" "$d"
				[[ -n $quiet ]] || echo "  update $f" >&2
				changed=$((changed + 1)); SYNC_PATHS+=("$f")
			fi
		elif [[ -e $d || -L $d ]]; then
			rm -f "$d"; [[ -n $quiet ]] || echo "  delete $f" >&2
			changed=$((changed + 1)); SYNC_PATHS+=("$f")
		fi
		if [[ -f $s && -f $pristine/$f ]] && cmp -s "$s" "$pristine/$f" &&
			[[ $(stat -c %a "$s") == $(stat -c %a "$pristine/$f") ]]; then :
		elif [[ ! -f $s && ! -f $pristine/$f ]]; then :
		else echo "$f" >>"$manifest.tmp"; fi
	done <"$list"
	mv "$manifest.tmp" "$manifest"
	SYNC_CHANGED=$changed
}

# Regex (grep -E) matching a compiler diagnostic in a file the series touches,
# e.g. "…/arch/x86/kvm/x86.c:12:3: warning: …". Run check_series first.
series_warn_re() {
	local alt
	alt=$(series_paths | sed 's/[].[*^$+?(){}|\\]/\\&/g' | paste -sd'|')
	[[ -n $alt ]] || alt='kvmi'
	echo "(^|/)($alt):[0-9]+(:[0-9]+)?: (warning|error):"
}

# forget_series_objects O [EXCEPT]: remove the objects of the series' C files
# from the O= dir, so that their warnings are printed again (ccache replays
# them); EXCEPT: globs (space-separated) of paths to keep.
forget_series_objects() {
	local O=$1 except=${2:-} f g keep
	while IFS= read -r f; do
		[[ $f == *.c ]] || continue
		keep=0
		for g in $except; do
			# shellcheck disable=SC2053
			[[ $f == $g ]] && keep=1
		done
		((keep)) || rm -f "$O/${f%.c}.o"
	done < <(series_paths)
	return 0
}

# The bisect's source dir: a full kernel tree that the bisect check moves from
# prefix to prefix (stage_sync), with its manifest; the compile checks build
# the final tree there, in the bisect's O= dirs (build/bisect-*).
BSRC=$CACHE/bisect-src
BMANIFEST=$STATE/bisect-manifest
bisect_src_prepare() {
	local version pristine
	version=$(pristine_version); pristine=$(pristine_dir)
	[[ -f $BSRC/Makefile && $(cat "$STATE/bisect-src-version" 2>/dev/null) == "$version" ]] && return 0
	log "creating $BSRC from pristine $version (and wiping the bisect build dirs)"
	rm -rf "$BSRC" "$BUILD"/bisect-* "$BUILD"/.kconfig-bisect-* "$BMANIFEST"
	mkdir -p "$STATE" "$BUILD"
	cp -a "$pristine" "$BSRC.tmp.$$"
	rm -f "$BSRC.tmp.$$/.kvmi-pristine-ok"
	mv "$BSRC.tmp.$$" "$BSRC"
	echo "$version" >"$STATE/bisect-src-version"
}

# Git: the base repo ($CACHE/git/<version>: one commit "Linux 6.12.y" with the
# pristine tree, tag "base"; the export and the git am check use it) and the
# developer's kernel tree ($CACHE/tree/<version>, make tree).
base_repo() { echo "$CACHE/git/$(pristine_version)"; }
tree_dir() { echo "$CACHE/tree/$(pristine_version)"; }

ensure_base_repo() {
	local G pristine version upstream
	G=$(base_repo); version=$(pristine_version)
	git -C "$G" rev-parse -q --verify refs/tags/base >/dev/null 2>&1 && return 0
	ensure_pristine
	pristine=$(pristine_dir); upstream=$(pristine_upstream)
	log "creating the base git repo $G (Linux $upstream, about a minute, once)"
	rm -rf "$G"; mkdir -p "$G"
	git init -q "$G"
	git -C "$G" config core.autocrlf false; git -C "$G" config gc.auto 0
	GIT_DIR=$G/.git GIT_WORK_TREE=$pristine git add -A -f -- . ':!.kvmi-pristine-ok'
	GIT_DIR=$G/.git GIT_WORK_TREE=$pristine GIT_AUTHOR_NAME=Linux GIT_AUTHOR_EMAIL=linux@kernel.org \
		GIT_COMMITTER_NAME=Linux GIT_COMMITTER_EMAIL=linux@kernel.org \
		GIT_AUTHOR_DATE=$KVMI_DATE GIT_COMMITTER_DATE=$KVMI_DATE \
		git commit -q -m "Linux $upstream" -m "Debian linux-source-6.12 $version"
	git -C "$G" tag base
}

# series_commits REPO BASE PATCHFILE...: one commit per patch on top of BASE in
# REPO, made as git am makes them (git mailinfo: author, subject without
# "[PATCH]", body; git apply) but with plumbing on a temporary index, so no
# work tree is touched. Author date = the patch's Date: or $KVMI_DATE,
# committer = author at $KVMI_DATE: the same patches give the same hashes.
# Prints the tip; fails (status 1, reason on stderr) if a patch does not apply.
series_commits() {
	local repo=$1 head tmp pf subj name email date tree rc=0
	head=$(git -C "$repo" rev-parse "$2^{commit}"); shift 2
	mkdir -p "$CACHE/tmp"; tmp=$(mktemp -d "$CACHE/tmp/commits.XXXXXX")
	export GIT_INDEX_FILE=$tmp/index
	git -C "$repo" read-tree "$head" || rc=1
	for pf in "$@"; do
		((rc == 0)) || break
		if ! git mailinfo "$tmp/msg" "$tmp/diff" <"$pf" >"$tmp/info"; then
			echo "${pf##*/}: git mailinfo failed" >&2; rc=1; break
		fi
		subj=$(sed -n 's/^Subject: //p' "$tmp/info")
		name=$(sed -n 's/^Author: //p' "$tmp/info"); email=$(sed -n 's/^Email: //p' "$tmp/info")
		date=$(sed -n 's/^Date: //p' "$tmp/info")
		if [[ -z $subj || -z $name ]]; then
			echo "${pf##*/}: no From:/Subject: header" >&2; rc=1; break
		fi
		if [[ ! -s $tmp/diff ]]; then
			echo "${pf##*/}: no diff (git am would stop on it)" >&2; rc=1; break
		fi
		if ! git -C "$repo" apply --cached --whitespace=nowarn "$tmp/diff"; then
			echo "${pf##*/} does not apply (git apply --cached)" >&2; rc=1; break
		fi
		{ echo "$subj"; echo; cat "$tmp/msg"; } | git stripspace >"$tmp/commit-msg"
		if ! tree=$(git -C "$repo" write-tree) ||
		   ! head=$(GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email GIT_AUTHOR_DATE=${date:-$KVMI_DATE} \
				GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email GIT_COMMITTER_DATE=$KVMI_DATE \
				git -C "$repo" commit-tree "$tree" -p "$head" -F "$tmp/commit-msg"); then
			echo "${pf##*/}: git write-tree/commit-tree failed" >&2; rc=1; break
		fi
	done
	unset GIT_INDEX_FILE
	rm -rf "$tmp"
	((rc == 0)) || return 1
	echo "$head"
}

# format_patches REPO RANGE OUTDIR: the commits of RANGE as patches/ files:
# git format-patch with settings that do not depend on anyone's git config,
# "[PATCH]" without numbers, zero commit hash, no signature, then normalized
# (normalize_patch). Output is byte-stable: the same commits give the same files.
format_patches() {
	local f
	GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git -C "$1" \
		-c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false \
		-c diff.algorithm=myers -c diff.indentHeuristic=true \
		-c format.useAutoBase=false -c format.signature= \
		-c format.coverLetter=false -c format.numbered=false -c format.filenameMaxLength=64 \
		-c format.encodeEmailHeaders=true -c core.quotePath=true \
		format-patch -q -N --zero-commit --no-signature --subject-prefix=PATCH \
		--no-cover-letter --no-thread --no-notes -M -O/dev/null --stat -o "$3" "$2"
	for f in "$3"/*.patch; do [[ -f $f ]] && normalize_patch "$f"; done
	return 0
}

# normalize_patch FILE: drop the Date: header (git am then uses the committer's
# clock, the tree pins it) and the "index <old>..<new>" lines (blob hashes that
# change whenever an earlier patch changes; git am/apply do not need them for text).
normalize_patch() {
	awk 'hdr == 0 && /^Date: / { next }
	     hdr == 0 && /^$/ { hdr = 1 }
	     /^diff --git / { dh = 1; print; next }
	     dh && /^index [0-9a-f]+\.\.[0-9a-f]+( [0-7]+)?$/ { next }
	     dh && (/^@@ / || /^--- / || /^Binary files / || /^GIT binary patch/) { dh = 0 }
	     { print }' "$1" >"$1.tmp"
	mv "$1.tmp" "$1"
}

# Result file helpers: one line per case, "PASS name" / "FAIL name" / "SKIP name (reason)".
RESULTS=$OUT/results
result() { # result STAGE PASS|FAIL|SKIP name [reason]
	local stage=$1 st=$2 name=$3 why=${4:-}
	mkdir -p "$RESULTS"
	if [[ -n $why ]]; then echo "$st $name ($why)"; else echo "$st $name"; fi >>"$RESULTS/$stage.txt"
	if [[ -n $why ]]; then echo "$st $name ($why)"; else echo "$st $name"; fi >&2
}
reset_results() { mkdir -p "$RESULTS"; : >"$RESULTS/$1.txt"; }

# One harness run at a time per cache (builds share the O= dirs). The lock is
# taken once by the outermost script; children inherit it through KVMI_LOCKED.
# make tree / make patches only touch tree/ and take their own lock
# (KVMI_LOCK=tree.lock), so they work while a make check runs.
if [[ -z ${KVMI_LOCKED:-} ]]; then
	mkdir -p "$CACHE"
	exec 9>>"$CACHE/${KVMI_LOCK:-.lock}"
	if ! flock -n 9; then
		log "waiting for another harness run using $CACHE ..."
		flock 9
	fi
	export KVMI_LOCKED=1
fi

# Print the output of the tests named in $KVMI_SHOW from a serial log.
show_test_output() {
	local serial=$1 t
	for t in ${KVMI_SHOW:-}; do
		echo "---------------- output of $t ----------------"
		tr -d '\r' <"$serial" | sed -n "s/^\[$t\] //p"
		echo "----------------------------------------------"
	done
}
