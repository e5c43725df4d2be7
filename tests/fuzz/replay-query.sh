#!/bin/sh
# Replay tests/fuzz/corpus/query through the query fuzz target (see replay.sh).
set -- query
. "$(dirname "$0")/replay.sh"
