#!/bin/sh
# Replay tests/fuzz/corpus/socketio through the socketio fuzz target (see replay.sh).
set -- socketio
. "$(dirname "$0")/replay.sh"
