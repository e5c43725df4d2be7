/* allow.c - a plugin with an allow_request handler (ABI 1.1), for
 * tests/integration/security.test.mjs. It decides on the handshake's
 * query string:
 *   deny=code4   refused with code 4 "Go away" (HTTP 403)
 *   deny=code3   refused with code 3 "Bad client" (HTTP 400)
 *   deny=plain   the handler returns 1 without refusing: 403 "Forbidden"
 *   deny=badcode refused with code 9 (not an Engine.IO code): 403 code 4
 *   deny=show    refused with code 4 and the message
 *                "<transport>|<origin or ->|<address>|<user-agent header>",
 *                so a test can see what the handler was given
 * and lets everything else through. It serves no namespace itself (load
 * echo.so beside it). */
#include <stdio.h>
#include <string.h>
#include <siogate/plugin.h>

SG_PLUGIN_DECLARE;

static const sg_host *host;

static const char *str_or(json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static int allow(sg_request *req, json_t *info, void *ud)
{
    (void)ud;
    const char *deny = str_or(json_object_get(json_object_get(info, "query"), "deny"), NULL);
    if (!deny)
        return 0;
    if (!strcmp(deny, "code4"))
        host->refuse(req, 4, "Go away");
    else if (!strcmp(deny, "code3"))
        host->refuse(req, 3, "Bad client");
    else if (!strcmp(deny, "badcode"))
        host->refuse(req, 9, "nine");
    else if (!strcmp(deny, "show")) {
        char msg[200];
        json_t *headers = json_object_get(info, "headers");
        snprintf(msg, sizeof msg, "%s|%s|%s|%s", str_or(json_object_get(info, "transport"), "?"),
                 str_or(json_object_get(info, "origin"), "-"),
                 str_or(json_object_get(info, "address"), "-"),
                 str_or(json_object_get(headers, "user-agent"), "-"));
        host->refuse(req, 4, msg);
    }
    return 1;
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    return h->allow_request(self, allow, NULL);
}
