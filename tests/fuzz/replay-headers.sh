#!/bin/sh
# Replay tests/fuzz/corpus/headers through the headers fuzz target (see replay.sh).
set -- headers
. "$(dirname "$0")/replay.sh"
