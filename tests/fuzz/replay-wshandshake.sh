#!/bin/sh
# Replay tests/fuzz/corpus/wshandshake through the wshandshake fuzz target (see replay.sh).
set -- wshandshake
. "$(dirname "$0")/replay.sh"
