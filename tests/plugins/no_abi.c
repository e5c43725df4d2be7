/* no_abi.c - a plugin built without SG_PLUGIN_DECLARE: it exports
 * sg_plugin_init but not sg_plugin_abi, so the host cannot tell which ABI
 * it expects. The host must refuse it, naming the file and the symbol. */
#include <siogate/plugin.h>

int sg_plugin_init(const sg_host *host, sg_plugin *self)
{
    SG_PLUGIN_CHECK(host);
    (void)self;
    return 0;
}
