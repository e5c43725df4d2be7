#!/bin/sh
# Replay tests/fuzz/corpus/config through the config fuzz target (see replay.sh).
set -- config
. "$(dirname "$0")/replay.sh"
