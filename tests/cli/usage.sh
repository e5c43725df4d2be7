#!/bin/sh
# tests/cli/usage.sh - every usage error of the gateway CLI, and --help of
# every command. TAP output (the plan comes last).
#
# A usage error must: exit 2, print nothing on stdout, and print exactly
# one line on stderr that starts with "siogate" and says what to do. None
# of them may touch the store: the configuration used here names a store
# that does not exist (a command that got as far as the store would exit
# 1 with "no store"; one that created it would leave the file behind).
#
# Environment: SG_BUILDDIR (default: the source tree) holds gateway/siogate.
set -u

here=$(cd "$(dirname "$0")" && pwd)
build=${SG_BUILDDIR:-$(dirname "$(dirname "$here")")}
SIOGATE=$build/gateway/siogate

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

if [ ! -x "$SIOGATE" ]; then
    echo "1..0 # SKIP $SIOGATE not built"
    exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sg-usage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
conf=$tmp/siogate.conf
printf 'db = %s/no-store.db\n' "$tmp" >"$conf"
printf 'ping_interval = soon\n' >"$tmp/bad.conf"
export SIOGATE_CONF=$conf

# usage DESCRIPTION STDIN -- ARGS...: siogate ARGS must be a usage error.
usage() {
    desc=$1 input=$2
    shift 3
    printf '%s' "$input" | "$SIOGATE" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err" | tr -d ' ')
    first=$(head -n 1 "$tmp/err")
    if [ "$rc" = 2 ] && [ ! -s "$tmp/out" ] && [ "$lines" = 1 ] &&
        case "$first" in siogate*) true ;; *) false ;; esac; then
        ok "$desc: $first"
    else
        not_ok "$desc (siogate $*)" "exit $rc (expected 2), stderr lines $lines:" \
            "$(cat "$tmp/err")" "stdout: $(cat "$tmp/out")"
    fi
    if [ -e "$tmp/no-store.db" ]; then
        not_ok "$desc: the store was created" "a usage error must not touch the store"
        rm -f "$tmp/no-store.db"*
    fi
}

# ---- global
usage "no command"                    '' -- 
usage "unknown command"               '' -- frobnicate
usage "unknown global option"         '' -- --frob emit x
usage "unknown global short option"   '' -- -z emit x
usage "--conf without a value"        '' -- --conf
usage "empty --conf"                  '' -- --conf '' stats
usage "a broken configuration file"   '' -- --conf "$tmp/bad.conf" stats
usage "a missing configuration file"  '' -- --conf "$tmp/none.conf" emit x

# names that are not UTF-8 text (a byte never in UTF-8; an encoded surrogate)
bad=$(printf 'a\377b')
sur=$(printf '\355\240\200')

# ---- emit
usage "emit: no EVENT"                '' -- emit
usage "emit: empty EVENT"             '' -- emit ''
usage "emit: reserved event"          '' -- emit connect
usage "emit: reserved event (2)"      '' -- emit disconnect
usage "emit: a bare word argument"    '' -- emit ev hello
usage "emit: the 3rd argument is bad" '' -- emit ev 1 '"ok"' '{bad'
usage "emit: a negative number"       '' -- emit ev -1
usage "emit: unknown option"          '' -- emit --frob ev
usage "emit: unknown short option"    '' -- emit -z ev
usage "emit: unknown in a cluster"    '' -- emit -vz ev
usage "emit: a negative fraction"     '' -- emit ev -1.5
usage "leave: a room like an id"      '' -- leave --socket abc -3kJ_SH4AF9TgBhK5DLK
usage "emit: option without value"    '' -- emit ev --to
usage "emit: empty --to"              '' -- emit --to '' ev
usage "emit: empty --socket"          '' -- emit --socket '' ev
usage "emit: --nsp without /"         '' -- emit --nsp chat ev
usage "emit: --ack not a duration"    '' -- emit --ack soon ev
usage "emit: --ack zero"              '' -- emit --ack 0 ev
usage "emit: --ack negative"          '' -- emit --ack -5 ev
usage "emit: --ack bad unit"          '' -- emit --ack 5h ev
usage "emit: --args-stdin and ARGs"   '[1]' -- emit --args-stdin ev 1
usage "emit: stdin twice"             '[1]' -- emit --args-stdin --bin - ev
usage "emit: --bin - twice"           'x' -- emit --bin - --bin - ev
usage "emit: stdin not JSON"          'hello' -- emit --args-stdin ev
usage "emit: stdin not an array"      '{"a":1}' -- emit --args-stdin ev
usage "emit: stdin empty"             '' -- emit --args-stdin ev
usage "emit: EVENT not UTF-8"         '' -- emit "$bad"
usage "emit: --to not UTF-8"          '' -- emit --to "$bad" ev
usage "emit: --except not UTF-8"      '' -- emit --except "$sur" ev
usage "emit: --socket not UTF-8"      '' -- emit --socket "$bad" ev
usage "emit: --nsp not UTF-8"         '' -- emit --nsp "/$sur" ev

# ---- listings
usage "sockets: extra argument"       '' -- sockets extra
usage "sockets: --nsp without /"      '' -- sockets --nsp x
usage "sockets: unknown option"       '' -- sockets --all
usage "rooms: --room is not an option" '' -- rooms --room r
usage "rooms: extra argument"         '' -- rooms extra
usage "stats: --nsp is not an option" '' -- stats --nsp /
usage "stats: extra argument"         '' -- stats extra
usage "sockets: --room not UTF-8"     '' -- sockets --room "$bad"
usage "rooms: --nsp not UTF-8"        '' -- rooms --nsp "/$bad"

# ---- join, leave
usage "join: no selector"             '' -- join room
usage "join: no ROOM"                 '' -- join --socket abc
usage "join: empty ROOM"              '' -- join --socket abc ''
usage "join: --nsp without /"         '' -- join --nsp x --room a b
usage "leave: no selector"            '' -- leave room
usage "leave: no ROOM"                '' -- leave --room from
usage "leave: empty --room"           '' -- leave --room '' b
usage "join: ROOM not UTF-8"          '' -- join --room a "$bad"
usage "join: --socket not UTF-8"      '' -- join --socket "$sur" b
usage "leave: --room not UTF-8"       '' -- leave --room "$bad" b
usage "join: --nsp not UTF-8"         '' -- join --nsp "/$bad" --room a b

# ---- disconnect
usage "disconnect: no selector"       '' -- disconnect
usage "disconnect: two selectors"     '' -- disconnect --all --room r
usage "disconnect: extra argument"    '' -- disconnect --all now
usage "disconnect: --nsp without /"   '' -- disconnect --all --nsp x
usage "disconnect: --room not UTF-8"  '' -- disconnect --room "$bad"
usage "disconnect: --socket not UTF-8" '' -- disconnect --socket "$sur"

# ---- the rest
usage "init: extra argument"          '' -- init now
usage "migrate: unknown option"       '' -- migrate --force
usage "gc: extra argument"            '' -- gc now
usage "check: extra argument"         '' -- check plugins
usage "help: unknown command"         '' -- help frobnicate
usage "help: two commands"            '' -- help emit gc

# ---- --help of every command: exit 0, the usage on stdout, nothing else
for cmd in emit sockets rooms join leave disconnect stats init migrate gc check help; do
    "$SIOGATE" "$cmd" --help >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 0 ] && [ ! -s "$tmp/err" ] && head -n 1 "$tmp/out" | grep -q "^usage: siogate $cmd"; then
        ok "$cmd --help"
    else
        not_ok "$cmd --help" "exit $rc; stdout: $(head -n 2 "$tmp/out")" "stderr: $(cat "$tmp/err")"
    fi
done
for args in "--help" "help" "help emit" "--version"; do
    # shellcheck disable=SC2086 # words on purpose
    "$SIOGATE" $args >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 0 ] && [ ! -s "$tmp/err" ] && [ -s "$tmp/out" ]; then
        ok "siogate $args"
    else
        not_ok "siogate $args" "exit $rc" "stderr: $(cat "$tmp/err")"
    fi
done
# every command is listed by --help
"$SIOGATE" --help >"$tmp/out"
for cmd in emit sockets rooms join leave disconnect stats init migrate gc check; do
    if grep -q "^  $cmd " "$tmp/out"; then ok "--help lists $cmd"; else not_ok "--help lists $cmd"; fi
done

# ---- not usage errors: a missing store is a runtime failure (exit 1)
"$SIOGATE" stats >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "^siogate stats: no store at .*siogate init" "$tmp/err" && [ ! -e "$tmp/no-store.db" ]; then
    ok "a missing store: exit 1, says to run siogate init, creates nothing"
else
    not_ok "a missing store: exit 1" "exit $rc" "stderr: $(cat "$tmp/err")"
fi
# and --bin with an unreadable file
"$SIOGATE" emit --bin "$tmp/nope.bin" ev >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && grep -q "^siogate emit: --bin .*nope.bin: No such file" "$tmp/err"; then
    ok "--bin with a missing file: exit 1"
else
    not_ok "--bin with a missing file: exit 1" "exit $rc" "stderr: $(cat "$tmp/err")"
fi

echo "1..$n"
[ "$failed" = 0 ]
