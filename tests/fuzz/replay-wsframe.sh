#!/bin/sh
# Replay tests/fuzz/corpus/wsframe through the wsframe fuzz target (see replay.sh).
set -- wsframe
. "$(dirname "$0")/replay.sh"
