#!/bin/sh
# tests/fuzz/replay.sh TARGET - replay the seed corpus of one fuzz target
# (tests/fuzz/corpus/TARGET) through tests/fuzz/replay_TARGET, a build of
# tests/fuzz/fuzz_TARGET.c with tests/fuzz/replay.c and no libFuzzer. TAP
# output: one test point per input; a target that aborts on an input
# leaves the plan short. make check runs it through replay-TARGET.sh.
#
# Environment: SG_BUILDDIR (default: the source tree) holds the programs,
# SG_SRCDIR (default: the tree this script is in) the corpora.
set -u

target=${1:?usage: replay.sh TARGET}
here=$(cd "$(dirname "$0")" && pwd)
src=${SG_SRCDIR:-$(dirname "$(dirname "$here")")}
build=${SG_BUILDDIR:-$src}
prog=$build/tests/fuzz/replay_$target
corpus=$src/tests/fuzz/corpus/$target

if [ ! -x "$prog" ]; then
    echo "1..1"
    echo "not ok 1 - $prog not built (make check builds it)"
    exit 1
fi
if [ ! -d "$corpus" ]; then
    echo "1..1"
    echo "not ok 1 - no corpus $corpus"
    exit 1
fi
# the echo plugin for the engine target (fuzz_engine.c)
SG_FUZZ_PLUGIN=${SG_FUZZ_PLUGIN-$build/plugins/echo.so}
export SG_FUZZ_PLUGIN
exec "$prog" "$corpus"
