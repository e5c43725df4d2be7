#!/bin/sh
# tests/fuzz/run.sh - `make fuzz`: build every libFuzzer target of
# tests/fuzz with clang -fsanitize=fuzzer,address,undefined in a build
# directory of its own (the main build is not touched) and run each for
# FUZZ_SECONDS with its dictionary (tests/fuzz/dict/T.dict) and its seeds
# (tests/fuzz/corpus/T) into a scratch corpus that later runs start from.
# Prints, per target, executions, coverage (cov: edges, ft: features), the
# size of the scratch corpus, CPU seconds and the findings; exits 1 when a
# target found something (the input is saved under FUZZ_DIR/artifacts/),
# 77 when clang, its runtime or a library's headers are missing (the
# message names the Debian packages; 77: automake's "skipped"), 2 when
# something else stops it (a build failure, a bad FUZZ_TARGETS).
#
# Environment (make fuzz passes them on):
#   SG_SRCDIR, SG_BUILDDIR  the source tree and the build tree (required;
#                           the build tree has gateway/schema.c)
#   FUZZ_SECONDS            seconds per target (wall clock; default 600)
#   FUZZ_TARGETS            which targets, space-separated (default: all)
#   FUZZ_DIR                work directory (default SG_BUILDDIR/fuzz-build)
#   FUZZ_CC                 the compiler (default clang)
#   FUZZ_FLAGS              more libFuzzer flags (e.g. -jobs=2 -workers=2)
#   SG_FUZZ_PLUGIN          the plugin fuzz_engine loads (default: the
#                           build's plugins/echo.so)
#   WSLAY_SRC               a wslay source tree (its lib/ directory is built
#                           with the sanitizers into fuzz_wsframe, so that
#                           libFuzzer sees wslay's branches); default: the
#                           system libwslay, whose code libFuzzer cannot see
set -u

ALL="engineio socketio base64 config wshandshake fcgi wsframe query headers engine"
src=${SG_SRCDIR:?SG_SRCDIR: the source tree}
build=${SG_BUILDDIR:?SG_BUILDDIR: the build tree}
seconds=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-$ALL}
dir=${FUZZ_DIR:-$build/fuzz-build}
cc=${FUZZ_CC:-clang}
flags=${FUZZ_FLAGS:-}

say() { printf 'fuzz: %s\n' "$*"; }

for t in $targets; do
    case " $ALL " in
    *" $t "*) ;;
    *) say "unknown target $t (known: $ALL)"; exit 2 ;;
    esac
done

mkdir -p "$dir/obj" "$dir/artifacts" "$dir/corpus" || exit 2
dir=$(cd "$dir" && pwd)

# ---- the toolchain
if ! command -v "$cc" >/dev/null 2>&1; then
    say "$cc not found. Debian/Ubuntu: apt-get install clang libclang-rt-14-dev"
    say "(libclang-rt-NN-dev for the clang-NN that 'clang' is; NN=14 on Debian 12)"
    exit 77
fi
if ! "$cc" --version 2>/dev/null | grep -q clang; then
    say "$cc is not clang: libFuzzer (-fsanitize=fuzzer) comes with clang"
    exit 77
fi
major=$("$cc" -dumpversion 2>/dev/null | cut -d. -f1)
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$dir/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$dir/probe.c" -o "$dir/probe" >"$dir/probe.log" 2>&1; then
    sed 's/^/  /' "$dir/probe.log" | head -5
    say "$cc cannot link -fsanitize=fuzzer,address,undefined: its runtime is missing."
    say "Debian/Ubuntu: apt-get install libclang-rt-${major:-NN}-dev (the runtime of clang-${major:-NN})"
    exit 77
fi

for pkg in jansson:libjansson-dev sqlite3:libsqlite3-dev libpq:libpq-dev; do
    pkg-config --exists "${pkg%%:*}" || { say "pkg-config finds no ${pkg%%:*} (Debian: ${pkg#*:})"; exit 77; }
done
if [ ! -f "$build/gateway/schema.c" ]; then
    say "$build/gateway/schema.c missing: run make first"
    exit 2
fi

cflags="-g -O1 -std=c11 -fno-omit-frame-pointer -D_GNU_SOURCE -pthread \
 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
 -I$src/gateway -DSG_SYSCONFDIR=\"/etc\" -DSG_PKGLIBDIR=\"/nonexistent\" \
 $(pkg-config --cflags jansson sqlite3 libpq)"
# libpq's headers only: the gateway loads the library itself (gateway/pq.h)
libs="$(pkg-config --libs jansson sqlite3) -pthread"

# ---- the gateway's code, instrumented, as one archive (each target links
# what it uses). Rebuilt when a source is newer than its object.
objs=
for f in "$src"/gateway/*.c "$build/gateway/schema.c"; do
    b=$(basename "$f" .c)
    case $b in
    *_main | schema-gen) continue ;;
    esac
    [ "$f" = "$src/gateway/schema.c" ] && [ "$src" != "$build" ] && continue
    o=$dir/obj/$b.o
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ -n "$(find "$src/gateway" -name '*.h' -newer "$o")" ]; then
        # shellcheck disable=SC2086
        $cc $cflags -c "$f" -o "$o" || { say "compiling $f failed"; exit 2; }
    fi
    objs="$objs $o"
done
rm -f "$dir/libsg.a"
# shellcheck disable=SC2086
ar rcs "$dir/libsg.a" $objs || exit 2

# ---- wslay for fuzz_wsframe
wslay_objs=
wslay_cflags=
wslay_libs=-lwslay
if [ -n "${WSLAY_SRC:-}" ]; then
    mkdir -p "$dir/wslay/wslay"
    sed 's/@PACKAGE_VERSION@/fuzz/' "$WSLAY_SRC/lib/includes/wslay/wslayver.h.in" \
        >"$dir/wslay/wslay/wslayver.h"
    cp "$WSLAY_SRC/lib/includes/wslay/wslay.h" "$dir/wslay/wslay/"
    wslay_cflags="-I$dir/wslay"
    for f in "$WSLAY_SRC"/lib/wslay_*.c; do
        o=$dir/obj/wslay-$(basename "$f" .c).o
        # shellcheck disable=SC2086
        # -fno-sanitize=pointer-overflow: wslay 1.1.1 adds 0 to a NULL
        # payload when it answers an empty close frame (wslay_event.c:849),
        # undefined but harmless, and not siogate's to fix
        $cc $cflags -fno-sanitize=pointer-overflow -w -DHAVE_ARPA_INET_H -DHAVE_NETINET_IN_H -I"$dir/wslay" \
            -I"$WSLAY_SRC/lib" -c "$f" -o "$o" || { say "compiling $f failed"; exit 2; }
        wslay_objs="$wslay_objs $o"
    done
    wslay_libs=
fi

# ---- build and run each target
found=0
summary=
for t in $targets; do
    exe=$dir/fuzz_$t
    extra=
    [ "$t" = wsframe ] && extra="$wslay_cflags $wslay_objs $wslay_libs"
    # shellcheck disable=SC2086
    if ! $cc $cflags -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" "$dir/libsg.a" $extra $libs \
        -o "$exe"; then
        say "building fuzz_$t failed"
        exit 2
    fi
    mkdir -p "$dir/corpus/$t"
    # the echo plugin for fuzz_engine (built by make: not instrumented)
    SG_FUZZ_PLUGIN=${SG_FUZZ_PLUGIN-$build/plugins/echo.so}
    export SG_FUZZ_PLUGIN
    dict=$src/tests/fuzz/dict/$t.dict
    log=$dir/fuzz_$t.log
    say "fuzz_$t: $seconds s (log: $log)"
    # libFuzzer's working files (fuzz-N.log with -jobs) land in the cwd
    # shellcheck disable=SC2086
    (cd "$dir" && /usr/bin/time -f 'cpu %U %S' -o "$dir/fuzz_$t.time" \
        "$exe" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -dict="$dict" -artifact_prefix="$dir/artifacts/$t-" $flags \
        "$dir/corpus/$t" "$src/tests/fuzz/corpus/$t") >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    ncorp=$(find "$dir/corpus/$t" -type f | wc -l)
    cpu=$(awk '/^cpu/ { printf "%.0f", $2 + $3 }' "$dir/fuzz_$t.time" 2>/dev/null)
    if [ $rc -eq 0 ]; then
        verdict="no finding"
    else
        found=1
        art=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1)
        verdict="FINDING (exit $rc): ${art:-see $log}"
        grep -m1 -E 'ERROR: |runtime error|==[0-9]+==' "$log" | sed 's/^/  /'
    fi
    line="fuzz_$t: execs ${execs:-?} cpu ${cpu:-?}s cov ${cov:-?} ft ${ft:-?} corpus $ncorp: $verdict"
    say "$line"
    summary="$summary$line
"
done
printf '\nfuzz summary (%s s each):\n%s' "$seconds" "$summary"
exit $found
