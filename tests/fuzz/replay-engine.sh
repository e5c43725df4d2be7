#!/bin/sh
# Replay tests/fuzz/corpus/engine through the engine fuzz target (see replay.sh).
set -- engine
. "$(dirname "$0")/replay.sh"
