#!/bin/sh
# tests/install/install.sh - `make install DESTDIR=TMP` installs what
# docs/deploy.md says, where it says, and the installed tree works:
#
#    1. make install DESTDIR=$TMP (the configured prefix)
#    2. bin/: siogate-fcgi, siogate-wsd, siogate, executable
#    3. include/siogate/plugin.h, the same as gateway/plugin.h
#    4. lib/pkgconfig/siogate-plugin.pc: pkg-config --define-prefix gives
#       the installed include dir and plugindir = pkglibdir
#    5. man1/siogate.1
#    6. the example plugins as pkglibdir/NAME.so, exporting the entry
#       points, and no .la file anywhere
#    7. pkgdatadir/schema: every schema/*.sql, unchanged
#    8. pkgdatadir/contrib: the web servers' files and cron, unchanged;
#       docdir: README, plugins.md, deploy.md
#    9. pkgdatadir/contrib/systemd: the units, with the installed paths
#   10. the installed siogate: init, check, emit against a scratch store
#   11. the installed siogate-fcgi and siogate-wsd load plugins named
#       `echo` and `chat` (bare names) from the installed pkglibdir
#       ($SIOGATE_PLUGIN_DIR, the tree being under DESTDIR), then ready
#   12. ...and stop on SIGTERM, exit status 0
#   13. a bare name that is not installed: siogate-fcgi refuses to start,
#       naming the file it looked for
#   14. a plugin built out of tree with pkg-config alone, put in plugindir,
#       loads by its bare name
#   15. make uninstall DESTDIR=$TMP leaves no file behind
#
# Environment: SG_BUILDDIR (a configured and built tree), SG_SRCDIR (its
# sources); make check sets both. TAP on stdout. Nothing is written
# outside a temporary directory, removed at the end (SG_KEEP_TMP=1 keeps
# it). Only processes started here are stopped, by pid.
set -u

: "${SG_BUILDDIR:?SG_BUILDDIR must name the build tree}"
: "${SG_SRCDIR:?SG_SRCDIR must name the source tree}"
CC=${CC:-cc}
MAKE=${MAKE:-make}
PLAN=15
PLUGINS="echo skeleton chat auth"

echo "1..$PLAN"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sg-install.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
pids=''
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null; done
    if [ -z "${SG_KEEP_TMP:-}" ]; then rm -rf "$TMP"; else echo "# kept $TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); echo "not ok $n - $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/# /' "$2" | tail -n 30; fi
}
# check DESCRIPTION LOG: ok when $fail is empty, else not ok with LOG
check() {
    if [ -z "$fail" ]; then ok "$1"; else echo "$fail" >>"$2"; not_ok "$1" "$2"; fi
}
skip_rest() {
    while [ "$n" -lt "$PLAN" ]; do n=$((n + 1)); echo "ok $n # SKIP $1"; done
    exit 0
}
# make in the build tree (the caller's flags, e.g. a jobserver, are not ours)
bmake() { (cd "$SG_BUILDDIR" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$MAKE" "$@"); }

# the configured directories: prefix=... bindir=... (shell words)
eval "$(bmake -s print-install-dirs)" || { echo "Bail out! make print-install-dirs failed"; exit 1; }
R=$TMP/root
D() { printf '%s%s' "$R" "$1"; }

# 1 -- install
if bmake install DESTDIR="$R" >"$TMP/install.log" 2>&1; then
    ok "make install DESTDIR=\$TMP (prefix $prefix)"
else
    not_ok "make install DESTDIR=\$TMP" "$TMP/install.log"
    skip_rest "nothing installed"
fi
(cd "$R" && find . ! -type d | sort) >"$TMP/files.txt"

# 2 -- programs
fail=''
for p in siogate-fcgi siogate-wsd siogate; do
    [ -x "$(D "$bindir")/$p" ] && [ -f "$(D "$bindir")/$p" ] || fail="$fail $bindir/$p missing"
done
# installed programs are real executables, not libtool wrapper scripts
if [ -z "$fail" ] && head -c 4 "$(D "$bindir")/siogate" | grep -q '^#!'; then fail="$bindir/siogate is a script"; fi
check "programs: $bindir/siogate-fcgi, siogate-wsd, siogate" "$TMP/files.txt"

# 3 -- header
fail=''
cmp -s "$SG_SRCDIR/gateway/plugin.h" "$(D "$includedir")/siogate/plugin.h" || fail="plugin.h missing or different"
check "header: $includedir/siogate/plugin.h (gateway/plugin.h)" "$TMP/files.txt"

# 4 -- pkg-config, relocated by --define-prefix (the .pc is in PREFIX/lib/pkgconfig)
PKG_CONFIG_PATH=$(D "$libdir")/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
pc() { pkg-config --define-prefix "$@"; }
fail=''
cflags=$(pc --cflags siogate-plugin 2>"$TMP/pc.log") || fail="pkg-config --cflags failed"
plugindir=$(pc --variable=plugindir siogate-plugin 2>>"$TMP/pc.log") || fail="$fail; no plugindir"
case " $cflags " in *" -I$(D "$includedir") "*) ;; *) fail="$fail; cflags '$cflags' lack -I$(D "$includedir")" ;; esac
[ "$plugindir" = "$(D "$pkglibdir")" ] || fail="$fail; plugindir '$plugindir' is not $(D "$pkglibdir")"
[ "$(pc --modversion siogate-plugin 2>/dev/null)" = "$version" ] || fail="$fail; --modversion is not $version"
check "siogate-plugin.pc $version: pkg-config --define-prefix: -I\$TMP$includedir, plugindir \$TMP$pkglibdir" "$TMP/pc.log"

# 5 -- man page
fail=''
[ -f "$(D "$mandir")/man1/siogate.1" ] || fail="no man1/siogate.1"
check "man page: $mandir/man1/siogate.1" "$TMP/files.txt"

# 6 -- example plugins
fail=''
for p in $PLUGINS; do
    f=$(D "$pkglibdir")/$p.so
    if [ ! -f "$f" ]; then fail="$fail $p.so missing"; continue; fi
    if command -v nm >/dev/null 2>&1; then
        syms=$(nm -D --defined-only "$f" | awk '{print $NF}' | grep -E '^sg_plugin_(init|abi)$' | sort | tr '\n' ' ')
        [ "$syms" = "sg_plugin_abi sg_plugin_init " ] || fail="$fail $p.so exports '$syms'"
    fi
done
if grep -q '\.la$' "$TMP/files.txt"; then fail="$fail; .la files installed: $(grep '\.la$' "$TMP/files.txt" | tr '\n' ' ')"; fi
check "plugins: $pkglibdir/{$(echo $PLUGINS | tr ' ' ,)}.so, no .la" "$TMP/files.txt"

# 7 -- schema
fail=''
for s in "$SG_SRCDIR"/schema/*.sql; do
    cmp -s "$s" "$(D "$pkgdatadir")/schema/$(basename "$s")" || fail="$fail schema/$(basename "$s")"
done
check "schema: $pkgdatadir/schema/*.sql" "$TMP/files.txt"

# 8 -- contrib and docs
fail=''
for f in README lighttpd/siogate.conf nginx/siogate.conf apache/siogate.conf cron/README cron/crontab; do
    cmp -s "$SG_SRCDIR/contrib/$f" "$(D "$pkgdatadir")/contrib/$f" || fail="$fail contrib/$f"
done
for f in README plugins.md deploy.md; do
    [ -f "$(D "$docdir")/$f" ] || fail="$fail $docdir/$f"
done
check "contrib: $pkgdatadir/contrib/{README,lighttpd,nginx,apache,cron}; docs in $docdir" "$TMP/files.txt"

# 9 -- systemd units with the installed paths
fail=''
u=$(D "$pkgdatadir")/contrib/systemd
for f in siogate-fcgi.service siogate-wsd.service siogate-fcgi.socket; do
    [ -f "$u/$f" ] || { fail="$fail $f missing"; continue; }
    if grep -n '@[a-z_]*@' "$u/$f" >>"$TMP/units.log"; then fail="$fail $f has @...@ left"; fi
done
grep -qx "ExecStart=$bindir/siogate-fcgi --conf $sysconfdir/siogate/siogate.conf --listen unix:/run/siogate/fcgi.sock" \
    "$u/siogate-fcgi.service" 2>/dev/null || fail="$fail; siogate-fcgi.service: ExecStart"
grep -qx "ExecStartPre=$bindir/siogate --conf $sysconfdir/siogate/siogate.conf init" \
    "$u/siogate-fcgi.service" 2>/dev/null || fail="$fail; siogate-fcgi.service: ExecStartPre"
grep -qx "ExecStart=$bindir/siogate-wsd --conf $sysconfdir/siogate/siogate.conf --listen unix:/run/siogate/wsd.sock" \
    "$u/siogate-wsd.service" 2>/dev/null || fail="$fail; siogate-wsd.service: ExecStart"
if [ -n "$systemdsystemunitdir" ]; then
    # an absolute directory: a relative one (once '$dc_install_base' reached
    # configure unexpanded, and make read "$d") lands wherever make runs
    case $systemdsystemunitdir in
        /*) ;;
        *) fail="$fail; systemdsystemunitdir is not absolute: $systemdsystemunitdir" ;;
    esac
    cmp -s "$u/siogate-fcgi.service" "$(D "$systemdsystemunitdir")/siogate-fcgi.service" ||
        fail="$fail; not in $systemdsystemunitdir"
fi
check "systemd units: ExecStart=$bindir/siogate-fcgi --conf $sysconfdir/siogate/siogate.conf ...${systemdsystemunitdir:+ (and in $systemdsystemunitdir)}" "$TMP/units.log"

# 10 -- the installed CLI against a scratch store
mkdir "$TMP/var"
CONF=$TMP/siogate.conf
printf 'db = %s/var/siogate.db\nplugin = echo\nplugin = chat\n' "$TMP" >"$CONF"
export SIOGATE_PLUGIN_DIR="$(D "$pkglibdir")"
SG=$(D "$bindir")/siogate
fail=''
"$SG" --conf "$CONF" init >"$TMP/cli.log" 2>&1 || fail="init failed"
"$SG" --conf "$CONF" check >>"$TMP/cli.log" 2>&1 || fail="$fail; check failed"
out=$("$SG" --conf "$CONF" -v emit news '"from the installed siogate"' 2>>"$TMP/cli.log") || fail="$fail; emit failed"
[ "$out" = 0 ] || fail="$fail; emit -v printed '$out', not 0 (no socket yet)"
[ "$("$SG" --conf "$CONF" stats 2>>"$TMP/cli.log" | awk '$1 == "schema_version" {print $2}')" = \
  "$(ls "$SG_SRCDIR"/schema/*.sql | wc -l | tr -d ' ')" ] || fail="$fail; schema_version is not the number of schema files"
check "installed siogate: init, check (plugins echo and chat by name), emit -v (0 sockets), stats" "$TMP/cli.log"

# 11 -- the installed servers load the installed plugins by bare name
# wait_for LOG PATTERN PID: the pattern appears while PID lives (10 s)
wait_for() {
    i=0
    while [ "$i" -lt 200 ] && kill -0 "$3" 2>/dev/null && ! grep -q "$2" "$1"; do sleep 0.05; i=$((i + 1)); done
    grep -q "$2" "$1"
}
"$(D "$bindir")/siogate-fcgi" --conf "$CONF" --listen "unix:$TMP/var/fcgi.sock" >"$TMP/fcgi.log" 2>&1 &
fpid=$!
"$(D "$bindir")/siogate-wsd" --conf "$CONF" --listen "unix:$TMP/var/wsd.sock" >"$TMP/wsd.log" 2>&1 &
wpid=$!
pids="$fpid $wpid"
fail=''
for l in fcgi:$fpid wsd:$wpid; do
    log=$TMP/${l%%:*}.log pid=${l#*:}
    wait_for "$log" 'info: ready: ' "$pid" || fail="$fail; ${l%%:*} not ready"
    for p in echo chat; do
        grep -q "plugin $(D "$pkglibdir")/$p.so loaded" "$log" || fail="$fail; ${l%%:*}: $p.so not loaded"
    done
done
cat "$TMP/fcgi.log" "$TMP/wsd.log" >"$TMP/servers.log"
check "installed siogate-fcgi and siogate-wsd: 'plugin = echo', 'plugin = chat' load \$TMP$pkglibdir/{echo,chat}.so; ready" "$TMP/servers.log"

# 12 -- SIGTERM
# stop PID: SIGTERM, then its exit status (or "hung") in $st
stop() {
    st=gone
    kill -TERM "$1" 2>/dev/null || return
    i=0
    while [ "$i" -lt 200 ] && kill -0 "$1" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    if kill -0 "$1" 2>/dev/null; then st=hung; else wait "$1"; st=$?; fi
}
stop "$fpid"; fs=$st
stop "$wpid"; ws=$st
pids=''
fail=''
[ "$fs" = 0 ] || fail="siogate-fcgi: $fs"
[ "$ws" = 0 ] || fail="$fail siogate-wsd: $ws"
cat "$TMP/fcgi.log" "$TMP/wsd.log" >"$TMP/servers.log"
check "SIGTERM: both exit 0" "$TMP/servers.log"

# 13 -- a bare name that is not installed
printf 'db = %s/var/siogate.db\nplugin = nosuch\n' "$TMP" >"$TMP/bad.conf"
fail=''
if "$(D "$bindir")/siogate-fcgi" --conf "$TMP/bad.conf" --listen "unix:$TMP/var/bad.sock" >"$TMP/bad.log" 2>&1; then
    fail="siogate-fcgi started"
fi
grep -q "plugin $(D "$pkglibdir")/nosuch.so: cannot load" "$TMP/bad.log" || fail="$fail; no 'plugin .../nosuch.so: cannot load'"
check "'plugin = nosuch': siogate-fcgi exits, \"plugin \$TMP$pkglibdir/nosuch.so: cannot load\"" "$TMP/bad.log"

# 14 -- out of tree, with pkg-config alone, into plugindir, loaded by name
mkdir "$TMP/myplugin"
cp "$SG_SRCDIR/plugins/skeleton.c" "$TMP/myplugin/myplugin.c"
fail=''
# shellcheck disable=SC2046 # word splitting of the flags is intended
if (cd "$TMP/myplugin" && $CC -std=c11 -Wall -Wextra -Werror -shared -fPIC \
        $(pc --cflags siogate-plugin jansson) -o myplugin.so myplugin.c $(pc --libs jansson) &&
    cp myplugin.so "$(pc --variable=plugindir siogate-plugin)/") >"$TMP/myplugin.log" 2>&1; then
    printf 'db = %s/var/siogate.db\nplugin = myplugin\n' "$TMP" >"$TMP/my.conf"
    "$SG" --conf "$TMP/my.conf" -vv check >>"$TMP/myplugin.log" 2>&1 || fail="siogate check failed"
    grep -q "plugin $(D "$pkglibdir")/myplugin.so loaded" "$TMP/myplugin.log" || fail="$fail; not loaded by name"
    rm -f "$(D "$pkglibdir")/myplugin.so"
else
    fail="did not build"
fi
check "out-of-tree plugin: cc \$(pkg-config --define-prefix --cflags siogate-plugin jansson); 'plugin = myplugin' loads it" "$TMP/myplugin.log"

# 15 -- uninstall
fail=''
bmake uninstall DESTDIR="$R" >"$TMP/uninstall.log" 2>&1 || fail="make uninstall failed"
left=$(cd "$R" && find . ! -type d | sort)
[ -z "$left" ] || { fail="$fail; left: $(echo $left)"; }
check "make uninstall DESTDIR=\$TMP: no file left" "$TMP/uninstall.log"
exit 0
