/* newer_minor.c - a plugin built against a newer minor of this major (it
 * may call table members this host lacks). The host must refuse it, naming
 * the file and both versions ("built for plugin ABI 1.99, this siogate
 * provides 1.2"). */
#include <siogate/plugin.h>

const uint32_t sg_plugin_abi[2] = {SG_ABI_MAJOR, 99};

int sg_plugin_init(const sg_host *host, sg_plugin *self)
{
    (void)host, (void)self;
    return 0; /* never reached */
}
