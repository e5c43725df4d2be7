#!/bin/sh
# tests/plugin-build/exports.sh - every plugin built in the tree exports
# exactly sg_plugin_init and sg_plugin_abi (besides the linker's own _init,
# _fini, _edata, _end, __bss_start): helpers left non-static would clash
# with nothing (plugins are loaded RTLD_LOCAL) but are a plugin's API by
# accident, and the example plugins are copied by others.
#
# Checks $SG_BUILDDIR/plugins/*.so and the test plugin features.so (the
# deliberately broken test plugins are left out). TAP on stdout.
set -u
: "${SG_BUILDDIR:?SG_BUILDDIR must name the build tree}"

if ! command -v nm >/dev/null 2>&1; then
    echo "1..0 # SKIP nm not found"
    exit 0
fi
set -- "$SG_BUILDDIR"/plugins/*.so
[ -e "$SG_BUILDDIR/tests/plugins/features.so" ] && set -- "$@" "$SG_BUILDDIR/tests/plugins/features.so"
if [ ! -e "$1" ]; then
    echo "1..0 # SKIP no plugin built in $SG_BUILDDIR/plugins"
    exit 0
fi
echo "1..$#"
n=0
for so in "$@"; do
    n=$((n + 1))
    name=${so#"$SG_BUILDDIR"/}
    if ! out=$(nm -D --defined-only "$so" 2>&1); then
        echo "not ok $n - $name: nm failed"
        printf '%s\n' "$out" | sed 's/^/# /'
        continue
    fi
    syms=$(printf '%s\n' "$out" | awk 'NF {print $NF}' |
           grep -v -E '^(_init|_fini|_edata|_end|__bss_start|__bss_start__|_bss_end__|__end__)$' |
           grep -v -E '^__(odr_asan|asan|ubsan|sancov)' |  # sanitizer builds add these
           sort | tr '\n' ' ')
    if [ "$syms" = "sg_plugin_abi sg_plugin_init " ]; then
        echo "ok $n - $name exports exactly sg_plugin_abi and sg_plugin_init"
    else
        echo "not ok $n - $name exports exactly sg_plugin_abi and sg_plugin_init"
        echo "# exported: $syms"
    fi
done
