#!/bin/sh
# Replay tests/fuzz/corpus/engineio through the engineio fuzz target (see replay.sh).
set -- engineio
. "$(dirname "$0")/replay.sh"
