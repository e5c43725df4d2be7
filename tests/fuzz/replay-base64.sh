#!/bin/sh
# Replay tests/fuzz/corpus/base64 through the base64 fuzz target (see replay.sh).
set -- base64
. "$(dirname "$0")/replay.sh"
