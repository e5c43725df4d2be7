/* wrong_abi.c - a plugin that says it needs the next ABI major. The host
 * must refuse it before calling sg_plugin_init, naming the file and both
 * versions ("built for plugin ABI 2.0, this siogate provides 1.0"). The
 * array is written by hand instead of SG_PLUGIN_DECLARE, as a plugin built
 * against a future header would have it. */
#include <siogate/plugin.h>

const uint32_t sg_plugin_abi[2] = {SG_ABI_MAJOR + 1, 0};

int sg_plugin_init(const sg_host *host, sg_plugin *self)
{
    (void)host, (void)self;
    return 0; /* never reached: the host refuses the plugin first */
}
