/* undefined_symbol.c - a plugin that calls a function nobody defines (a
 * missing library at link time). The host loads plugins with RTLD_NOW, so
 * it must refuse this one at start, naming the file and the symbol, rather
 * than crash at the first call. */
#include <siogate/plugin.h>

SG_PLUGIN_DECLARE;

extern int sg_no_such_function(int);

int sg_plugin_init(const sg_host *host, sg_plugin *self)
{
    SG_PLUGIN_CHECK(host);
    (void)self;
    return sg_no_such_function(0);
}
