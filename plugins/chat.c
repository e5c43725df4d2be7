/* chat.c - chat rooms on the namespace "/chat".
 *
 * Client events (every answer is an acknowledgement, {"ok":true,...} or
 * {"ok":false,"error":"..."}, as Socket.IO applications usually do it):
 *
 *   "nick" name            set this socket's nickname (1-32 bytes of UTF-8)
 *                          -> {ok}
 *   "join" room            join a room; the other members get "joined"
 *                          {nick, room} -> {ok, room, members:[nick...]}
 *                          (members includes the joiner)
 *   "leave" room           leave it; the remaining members get "left"
 *                          {nick, room} -> {ok}
 *   "say" {room, text}     everyone in the room, sender included, gets
 *                          "said" {nick, room, text, time} -> {ok}; only a
 *                          member may speak
 *   "members" room         -> {ok, room, members:[nick...]}
 *   "image" {room, type, data}
 *                          an image: type "image/png", "image/jpeg",
 *                          "image/gif" or "image/webp", data its bytes as
 *                          a binary value (1 byte to 512 KB) that begin as
 *                          that type's files do; everyone in the room,
 *                          sender included, gets "image" {nick, room, type,
 *                          data, time} (data binary) -> {ok}; only a member
 *                          may send one
 *
 * When a socket goes away every room it was in gets "left" {nick, room,
 * reason}.
 *
 * Idioms, as with the reference server:
 *  - "joined" is socket.to(room).emit(): everyone but the sender, who learns
 *    the outcome from the acknowledgement instead;
 *  - "said" is io.to(room).emit(): the sender gets its own message back like
 *    everyone else, so every client shows the room in the same order (the
 *    order the server handled the messages), and the ack only says that the
 *    message was accepted.
 *
 * Names: a client-visible room "lobby" is the siogate room "#lobby". Every
 * socket is also in the room named by its own id, so without the prefix a
 * client could "join" another socket's id and read its private messages;
 * socket ids never start with '#'.
 *
 * State: the nickname is socket data ({"nick": ...}), so any process can
 * read it, and "members" reads everyone's through fetch_sockets. Without a
 * nickname a socket is called by its id. */
#include <siogate/plugin.h>

#include <string.h>
#include <time.h>

SG_PLUGIN_DECLARE;

#define NSP "/chat"
#define MAX_NICK 32
#define MAX_ROOM 64
#define MAX_TEXT 4096
#define MAX_IMAGE (512 * 1024)

static const sg_host *host;

/* ---- helpers ------------------------------------------------------------- */

static int fail(sg_ctx *ctx, const char *error)
{
    host->ack(ctx, json_pack("[{s:b,s:s}]", "ok", 0, "error", error));
    return 0; /* a refused request is not a plugin failure */
}

/* The nickname of the context's socket, as a new JSON string. */
static json_t *nick_of(sg_ctx *ctx)
{
    json_t *data = host->get_data(ctx);
    json_t *nick = json_object_get(data, "nick");
    json_t *r = json_is_string(nick) ? json_incref(nick) : json_string(host->socket_id(ctx));
    json_decref(data);
    return r;
}

/* The room argument as the client named it, or NULL when it is no valid
 * name; *internal gets "#name". */
static const char *room_arg(json_t *v, char internal[MAX_ROOM + 2])
{
    const char *room = json_string_value(v);
    size_t len = room ? strlen(room) : 0;
    if (!room || len == 0 || len > MAX_ROOM || len != json_string_length(v))
        return NULL;
    internal[0] = '#';
    memcpy(internal + 1, room, len + 1);
    return room;
}

/* The nicknames of the members of internal room, as a new JSON array. */
static json_t *members(sg_ctx *ctx, const char *internal)
{
    const char *rooms[] = {internal, NULL};
    json_t *list = host->fetch_sockets(ctx, NULL, rooms);
    json_t *nicks = json_array();
    size_t i;
    json_t *s;
    if (!list || !nicks) {
        json_decref(list);
        json_decref(nicks);
        return NULL;
    }
    json_array_foreach(list, i, s) {
        json_t *nick = json_object_get(json_object_get(s, "data"), "nick");
        json_array_append(nicks, json_is_string(nick) ? nick : json_object_get(s, "id"));
    }
    json_decref(list);
    return nicks;
}

static int in_room(sg_ctx *ctx, const char *internal)
{
    json_t *rooms = host->rooms(ctx);
    size_t i;
    json_t *r;
    int found = 0;
    json_array_foreach(rooms, i, r) found |= strcmp(json_string_value(r), internal) == 0;
    json_decref(rooms);
    return found;
}

/* ---- events ----------------------------------------------------------------- */

static int on_nick(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *nick = json_array_get(args, 0);
    size_t len = json_string_length(nick);
    if (!json_is_string(nick) || len == 0 || len > MAX_NICK ||
        strlen(json_string_value(nick)) != len)
        return fail(ctx, "a nickname is a string of 1 to 32 bytes");
    json_t *data = host->get_data(ctx);
    if (!data)
        return -1;
    json_t *next = json_is_object(data) ? json_copy(data) : json_object();
    json_decref(data);
    if (!next || json_object_set(next, "nick", nick) < 0) {
        json_decref(next);
        return -1;
    }
    if (host->set_data(ctx, next) < 0) /* stolen: no decref, even on failure */
        return -1;
    host->ack(ctx, json_pack("[{s:b}]", "ok", 1));
    return 0;
}

static int on_join(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    char internal[MAX_ROOM + 2];
    const char *room = room_arg(json_array_get(args, 0), internal);
    if (!room)
        return fail(ctx, "a room is a string of 1 to 64 bytes");
    if (host->join(ctx, internal) < 0)
        return -1;
    const char *to[] = {internal, NULL};
    sg_target t = {.rooms = to, .flags = SG_EMIT_BROADCAST};
    host->emit_to(ctx, &t, "joined", json_pack("[{s:o,s:s}]", "nick", nick_of(ctx), "room", room));
    json_t *list = members(ctx, internal);
    if (!list)
        return -1;
    host->ack(ctx, json_pack("[{s:b,s:s,s:o}]", "ok", 1, "room", room, "members", list));
    return 0;
}

static int on_leave(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    char internal[MAX_ROOM + 2];
    const char *room = room_arg(json_array_get(args, 0), internal);
    if (!room)
        return fail(ctx, "a room is a string of 1 to 64 bytes");
    if (!in_room(ctx, internal))
        return fail(ctx, "not in this room");
    if (host->leave(ctx, internal) < 0)
        return -1;
    const char *to[] = {internal, NULL};
    sg_target t = {.rooms = to};
    host->emit_to(ctx, &t, "left", json_pack("[{s:o,s:s}]", "nick", nick_of(ctx), "room", room));
    host->ack(ctx, json_pack("[{s:b}]", "ok", 1));
    return 0;
}

static int on_say(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *msg = json_array_get(args, 0);
    char internal[MAX_ROOM + 2];
    const char *room = room_arg(json_object_get(msg, "room"), internal);
    json_t *text = json_object_get(msg, "text");
    if (!room || !json_is_string(text) || json_string_length(text) > MAX_TEXT)
        return fail(ctx, "say {room, text}: text a string of at most 4096 bytes");
    if (!in_room(ctx, internal))
        return fail(ctx, "not in this room");
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    const char *to[] = {internal, NULL};
    sg_target t = {.rooms = to};
    if (host->emit_to(ctx, &t, "said",
                      json_pack("[{s:o,s:s,s:O,s:I}]", "nick", nick_of(ctx), "room", room, "text",
                                text, "time",
                                (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000)) < 0)
        return -1;
    host->ack(ctx, json_pack("[{s:b}]", "ok", 1));
    return 0;
}

/* Image types a browser shows in an <img> without running anything (no
 * SVG), each with the bytes its files begin with. */
static const struct image_type {
    const char *type;
    const char *magic;
    size_t magic_len;
    size_t magic2_off; /* a second mark further in (WebP), 0: none */
    const char *magic2;
} image_types[] = {
    {"image/png", "\x89PNG\r\n\x1a\n", 8, 0, NULL},
    {"image/jpeg", "\xff\xd8\xff", 3, 0, NULL},
    {"image/gif", "GIF8", 4, 0, NULL},
    {"image/webp", "RIFF", 4, 8, "WEBP"},
};

/* Whether len bytes at data look like an image of type. */
static int image_ok(const char *type, const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < sizeof image_types / sizeof image_types[0]; i++) {
        const struct image_type *t = &image_types[i];
        if (strcmp(type, t->type) != 0)
            continue;
        if (len < t->magic_len || memcmp(data, t->magic, t->magic_len) != 0)
            return 0;
        if (t->magic2 && (len < t->magic2_off + strlen(t->magic2) ||
                          memcmp(data + t->magic2_off, t->magic2, strlen(t->magic2)) != 0))
            return 0;
        return 1;
    }
    return 0;
}

static int on_image(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    json_t *msg = json_array_get(args, 0);
    char internal[MAX_ROOM + 2];
    const char *room = room_arg(json_object_get(msg, "room"), internal);
    json_t *type = json_object_get(msg, "type");
    json_t *data = json_object_get(msg, "data");
    size_t len = 0;
    const unsigned char *bytes = data ? host->binary_data(data, &len) : NULL;
    if (!room || !json_is_string(type) || !bytes)
        return fail(ctx, "image {room, type, data}: data binary");
    if (len == 0 || len > MAX_IMAGE)
        return fail(ctx, "an image is 1 byte to 512 KB");
    if (strlen(json_string_value(type)) != json_string_length(type) ||
        !image_ok(json_string_value(type), bytes, len))
        return fail(ctx, "not a PNG, JPEG, GIF or WebP image of the type given");
    if (!in_room(ctx, internal))
        return fail(ctx, "not in this room");
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    const char *to[] = {internal, NULL};
    sg_target t = {.rooms = to};
    /* data is borrowed from args: O adds a reference (the host steals the
     * array, not the caller's binary value) */
    if (host->emit_to(ctx, &t, "image",
                      json_pack("[{s:o,s:s,s:O,s:O,s:I}]", "nick", nick_of(ctx), "room", room,
                                "type", type, "data", data, "time",
                                (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000)) < 0)
        return -1;
    host->ack(ctx, json_pack("[{s:b}]", "ok", 1));
    return 0;
}

static int on_members(sg_ctx *ctx, const char *event, json_t *args, void *ud)
{
    (void)event, (void)ud;
    char internal[MAX_ROOM + 2];
    const char *room = room_arg(json_array_get(args, 0), internal);
    if (!room)
        return fail(ctx, "a room is a string of 1 to 64 bytes");
    json_t *list = members(ctx, internal);
    if (!list)
        return -1;
    host->ack(ctx, json_pack("[{s:b,s:s,s:o}]", "ok", 1, "room", room, "members", list));
    return 0;
}

/* Gone: tell each of its rooms. The socket's rooms and data are still
 * readable here; only emits to the socket itself are over. */
static void on_disconnect(sg_ctx *ctx, const char *reason, void *ud)
{
    (void)ud;
    json_t *rooms = host->rooms(ctx);
    json_t *nick = nick_of(ctx);
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r) {
        const char *name = json_string_value(r);
        if (name[0] != '#')
            continue; /* its own id */
        const char *to[] = {name, NULL};
        sg_target t = {.rooms = to};
        host->emit_to(ctx, &t, "left",
                      json_pack("[{s:O,s:s,s:s}]", "nick", nick, "room", name + 1, "reason", reason));
    }
    json_decref(nick);
    json_decref(rooms);
}

int sg_plugin_init(const sg_host *h, sg_plugin *self)
{
    SG_PLUGIN_CHECK(h);
    host = h;
    if (h->on_event(self, NSP, "nick", on_nick, NULL) < 0 ||
        h->on_event(self, NSP, "join", on_join, NULL) < 0 ||
        h->on_event(self, NSP, "leave", on_leave, NULL) < 0 ||
        h->on_event(self, NSP, "say", on_say, NULL) < 0 ||
        h->on_event(self, NSP, "members", on_members, NULL) < 0 ||
        h->on_event(self, NSP, "image", on_image, NULL) < 0 ||
        h->on_disconnect(self, NSP, on_disconnect, NULL) < 0)
        return -1;
    return 0;
}
