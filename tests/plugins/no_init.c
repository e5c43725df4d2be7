/* no_init.c - a plugin without the entry point sg_plugin_init: the host
 * must refuse it, naming the file and the missing symbol. */
#include <siogate/plugin.h>

SG_PLUGIN_DECLARE;

/* The would-be entry point under another name (a typo, or C++ mangling). */
int sg_plugin_initialise(const sg_host *host, sg_plugin *self);
int sg_plugin_initialise(const sg_host *host, sg_plugin *self)
{
    (void)host, (void)self;
    return 0;
}
