#!/bin/sh
# tests/plugin-build/out-of-tree.sh - a plugin builds outside the tree
# exactly as docs/plugins.md says, against an installed siogate, and the
# installed gateway loads it.
#
#   1. `make install DESTDIR=TMP prefix=/usr` from the build tree
#   2. the header and the pkg-config file are where the docs say
#   3. pkg-config (the .pc's prefix moved under TMP) gives the include path
#   4. plugins/skeleton.c compiles with the documented command line
#   5. ...and with -std=c11 -Wall -Wextra -Werror (the header is clean)
#   6. the plugin exports exactly sg_plugin_init and sg_plugin_abi
#   7. the installed siogate-fcgi loads it ("plugin ... loaded", "ready")
#   8. ...and exits 0 on SIGTERM
#
# Environment: SG_BUILDDIR (a configured and built tree), SG_SRCDIR (its
# sources); make check sets both. TAP on stdout. Nothing is written outside
# a temporary directory, which is removed at the end (SG_KEEP_TMP=1 keeps
# it).
set -u

: "${SG_BUILDDIR:?SG_BUILDDIR must name the build tree}"
: "${SG_SRCDIR:?SG_SRCDIR must name the source tree}"
CC=${CC:-cc}
MAKE=${MAKE:-make}

echo "1..8"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sg-plugin-build.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
pid=''
cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
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
skip_rest() {
    while [ "$n" -lt 8 ]; do n=$((n + 1)); echo "ok $n # SKIP $1"; done
    exit 0
}

# 1 -- install (the caller's make flags, e.g. a jobserver, are not ours)
if (cd "$SG_BUILDDIR" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        "$MAKE" install DESTDIR="$TMP" prefix=/usr) >"$TMP/install.log" 2>&1; then
    ok "make install DESTDIR=\$TMP prefix=/usr"
else
    not_ok "make install DESTDIR=\$TMP prefix=/usr" "$TMP/install.log"
    skip_rest "nothing installed"
fi

# 2 -- installed files
PCDIR=$TMP/usr/lib/pkgconfig
if [ -f "$TMP/usr/include/siogate/plugin.h" ] && [ -f "$PCDIR/siogate-plugin.pc" ] &&
   [ -x "$TMP/usr/bin/siogate-fcgi" ]; then
    ok "installed: include/siogate/plugin.h, lib/pkgconfig/siogate-plugin.pc, bin/siogate-fcgi"
else
    (cd "$TMP" && find . -type f) >"$TMP/files.log"
    not_ok "installed: include/siogate/plugin.h, lib/pkgconfig/siogate-plugin.pc, bin/siogate-fcgi" "$TMP/files.log"
    skip_rest "files missing"
fi

# 3 -- pkg-config, with the .pc's prefix moved to where we installed
if ! command -v pkg-config >/dev/null 2>&1; then
    not_ok "pkg-config found"
    skip_rest "no pkg-config"
fi
PKG_CONFIG_PATH=$PCDIR${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
pc() { pkg-config --define-variable=prefix="$TMP/usr" "$@"; }
if cflags=$(pc --cflags siogate-plugin jansson 2>"$TMP/pc.log") &&
   libs=$(pc --libs jansson 2>>"$TMP/pc.log") &&
   case " $cflags " in *" -I$TMP/usr/include "*) true ;; *) false ;; esac; then
    ok "pkg-config --cflags siogate-plugin jansson: $(echo $cflags)"
else
    echo "cflags: ${cflags:-}" >>"$TMP/pc.log"
    not_ok "pkg-config --cflags siogate-plugin jansson names the installed include dir" "$TMP/pc.log"
    skip_rest "no flags"
fi

# 4 -- the documented command (docs/plugins.md, "Building")
mkdir "$TMP/myplugin"
cp "$SG_SRCDIR/plugins/skeleton.c" "$TMP/myplugin/myplugin.c"
# shellcheck disable=SC2086 # word splitting of the flags is intended
if (cd "$TMP/myplugin" && $CC -shared -fPIC $cflags -o myplugin.so myplugin.c $libs) \
        >"$TMP/cc.log" 2>&1; then
    ok "cc -shared -fPIC \$(pkg-config --cflags siogate-plugin jansson) -o myplugin.so myplugin.c \$(pkg-config --libs jansson)"
else
    not_ok "the documented compile command" "$TMP/cc.log"
    skip_rest "did not compile"
fi

# 5 -- strict: no warning from the installed header or the skeleton
# shellcheck disable=SC2086
if (cd "$TMP/myplugin" && $CC -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Werror -shared -fPIC $cflags -o strict.so myplugin.c $libs) \
        >"$TMP/strict.log" 2>&1; then
    ok "compiles with -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror"
else
    not_ok "compiles with -std=c11 -Wall -Wextra ... -Werror" "$TMP/strict.log"
fi

# 6 -- exported symbols
if command -v nm >/dev/null 2>&1; then
    syms=$(nm -D --defined-only "$TMP/myplugin/myplugin.so" | awk '{print $NF}' |
           grep -v -E '^(_init|_fini|_edata|_end|__bss_start|__bss_start__|_bss_end__|__end__)$' |
           sort | tr '\n' ' ')
    if [ "$syms" = "sg_plugin_abi sg_plugin_init " ]; then
        ok "exports exactly sg_plugin_abi and sg_plugin_init"
    else
        echo "exported: $syms" >"$TMP/nm.log"
        not_ok "exports exactly sg_plugin_abi and sg_plugin_init" "$TMP/nm.log"
    fi
else
    n=$((n + 1)); echo "ok $n # SKIP nm not found"
fi

# 7 -- the installed gateway loads it
cat >"$TMP/siogate.conf" <<CONF
db = $TMP/siogate.db
plugin = $TMP/myplugin/myplugin.so
CONF
"$TMP/usr/bin/siogate-fcgi" --conf "$TMP/siogate.conf" --listen "unix:$TMP/s.sock" \
    >"$TMP/fcgi.log" 2>&1 &
pid=$!
i=0
while [ "$i" -lt 200 ] && kill -0 "$pid" 2>/dev/null && ! grep -q 'info: ready: ' "$TMP/fcgi.log"; do
    sleep 0.05; i=$((i + 1))
done
if grep -q "plugin $TMP/myplugin/myplugin.so loaded" "$TMP/fcgi.log" &&
   grep -q 'info: ready: ' "$TMP/fcgi.log" && kill -0 "$pid" 2>/dev/null; then
    ok "siogate-fcgi: \"plugin .../myplugin.so loaded\", then ready"
else
    not_ok "siogate-fcgi: \"plugin .../myplugin.so loaded\", then ready" "$TMP/fcgi.log"
fi

# 8 -- clean exit on SIGTERM
status=none
if kill -TERM "$pid" 2>/dev/null; then
    i=0
    while [ "$i" -lt 200 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        status=hung
    else
        wait "$pid"; status=$?
    fi
fi
pid=''
if [ "$status" = 0 ] && grep -q 'info: stopped' "$TMP/fcgi.log"; then
    ok "SIGTERM: exit status 0, \"stopped\""
else
    echo "exit status: $status" >>"$TMP/fcgi.log"
    not_ok "SIGTERM: exit status 0, \"stopped\"" "$TMP/fcgi.log"
fi
exit 0
