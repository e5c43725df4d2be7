/* base64.c - RFC 4648 base64, standard alphabet, padded on output.
 *
 * The decoder is strict about the alphabet ('+' and '/', no URL-safe
 * characters, no whitespace) and about padding ('=' only at the very end,
 * at most two, and then the length must be a multiple of 4), but it
 * ignores the unused low bits of the last group, as Node's Buffer does. */
#include "base64.h"

#include <stdint.h>

static const char b64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of an alphabet character, or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int sg_base64_encode(sg_buf *out, const void *in, size_t n)
{
    const unsigned char *s = in;
    size_t groups = n / 3 + (n % 3 ? 1 : 0);

    if (groups > SIZE_MAX / 4)
        return -1;
    if (sg_buf_reserve(out, groups * 4) < 0)
        return -1;

    char *d = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *d++ = b64_alphabet[v >> 18 & 63];
        *d++ = b64_alphabet[v >> 12 & 63];
        *d++ = b64_alphabet[v >> 6 & 63];
        *d++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *d++ = b64_alphabet[v >> 18 & 63];
        *d++ = b64_alphabet[v >> 12 & 63];
        *d++ = '=';
        *d++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *d++ = b64_alphabet[v >> 18 & 63];
        *d++ = b64_alphabet[v >> 12 & 63];
        *d++ = b64_alphabet[v >> 6 & 63];
        *d++ = '=';
    }
    out->len += groups * 4;
    out->data[out->len] = '\0';
    return 0;
}

int sg_base64_decode(sg_buf *out, const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t m = n; /* significant characters, padding stripped */

    /* Padding: one or two '=' at the end of a length that is a multiple
     * of 4. Any other '=' is caught below as outside the alphabet. */
    if (m > 0 && s[m - 1] == '=') {
        if (n % 4 != 0)
            return -2;
        m--;
        if (m > 0 && s[m - 1] == '=')
            m--;
    }
    if (m % 4 == 1)
        return -2;

    size_t outlen = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
    if (sg_buf_reserve(out, outlen) < 0)
        return -1;

    unsigned char *d = (unsigned char *)out->data + out->len;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < m; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            out->data[out->len] = '\0'; /* restore the terminator */
            return -2;
        }
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *d++ = (unsigned char)(acc >> bits & 0xff);
        }
    }
    out->len += outlen;
    out->data[out->len] = '\0';
    return 0;
}
