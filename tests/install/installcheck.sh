#!/bin/sh
# tests/install/installcheck.sh DESTDIR BINDIR PKGLIBDIR - make installcheck
# (and so make distcheck): the installed siogate-fcgi finds an installed
# plugin by its bare name in the directory compiled into it (PKGLIBDIR;
# under a DESTDIR, only through $SIOGATE_PLUGIN_DIR), serves, and stops on
# SIGTERM. Exit status 0 when it does; what went wrong on stderr.
set -u
destdir=$1 bindir=$2 pkglibdir=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sg-installcheck.XXXXXX") || exit 1
pid=''
trap 'if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
unset SIOGATE_PLUGIN_DIR
if [ -n "$destdir" ]; then SIOGATE_PLUGIN_DIR=$destdir$pkglibdir; export SIOGATE_PLUGIN_DIR; fi
printf 'db = %s/siogate.db\nplugin = echo\n' "$tmp" >"$tmp/siogate.conf"
fail() { echo "installcheck: $*" >&2; sed 's/^/installcheck: | /' "$tmp/fcgi.log" >&2; exit 1; }

"$destdir$bindir/siogate" --conf "$tmp/siogate.conf" init || fail "siogate init failed"
"$destdir$bindir/siogate-fcgi" --conf "$tmp/siogate.conf" --listen "unix:$tmp/fcgi.sock" >"$tmp/fcgi.log" 2>&1 &
pid=$!
i=0
while [ "$i" -lt 200 ] && kill -0 "$pid" 2>/dev/null && ! grep -q 'info: ready: ' "$tmp/fcgi.log"; do
    sleep 0.05; i=$((i + 1))
done
grep -q "plugin $destdir$pkglibdir/echo.so loaded" "$tmp/fcgi.log" || fail "'plugin = echo' did not load $destdir$pkglibdir/echo.so"
grep -q 'info: ready: ' "$tmp/fcgi.log" || fail "siogate-fcgi not ready"
kill -TERM "$pid"
i=0
while [ "$i" -lt 200 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && fail "siogate-fcgi still running 10 s after SIGTERM"
wait "$pid"; rc=$?
pid=''
[ "$rc" = 0 ] || fail "siogate-fcgi exited $rc on SIGTERM"
echo "installcheck: $bindir/siogate-fcgi loaded 'plugin = echo' from $pkglibdir/echo.so"
