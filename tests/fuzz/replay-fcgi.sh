#!/bin/sh
# Replay tests/fuzz/corpus/fcgi through the fcgi fuzz target (see replay.sh).
set -- fcgi
. "$(dirname "$0")/replay.sh"
