/* fuzz_base64.c - fuzz target for gateway/base64.h.
 *
 * The input is decoded as base64; when it decodes, the bytes are encoded
 * and decoded again and must come back equal. The input is also taken as
 * raw bytes: encode then decode must give it back. Any difference aborts.
 * See tests/fuzz/README. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* bytes[0..n) -> base64 -> bytes must be the identity */
static void round_trip(const void *bytes, size_t n)
{
    sg_buf enc = SG_BUF_INIT, dec = SG_BUF_INIT;

    if (sg_base64_encode(&enc, bytes, n) < 0)
        goto out;
    if (enc.len != (n + 2) / 3 * 4 || enc.len % 4)
        abort(); /* padded output has 4 * ceil(n / 3) characters */
    int rc = sg_base64_decode(&dec, sg_buf_str(&enc), enc.len);
    if (rc == -1)
        goto out;
    if (rc != 0 || dec.len != n || (n && memcmp(dec.data, bytes, n) != 0))
        abort();
out:
    sg_buf_free(&enc);
    sg_buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_buf dec = SG_BUF_INIT;

    /* decoding appends: start from a non-empty buffer to check that */
    if (sg_buf_append(&dec, "x", 1) < 0)
        goto out;
    int rc = sg_base64_decode(&dec, (const char *)data, size);
    if (rc == 0) {
        if (dec.len < 1 || dec.data[0] != 'x' || dec.len - 1 > size / 4 * 3 + 2)
            abort();
        round_trip(dec.data + 1, dec.len - 1);
    } else if (rc == -2) {
        if (dec.len != 1 || dec.data[0] != 'x' || dec.data[1] != '\0')
            abort(); /* out unchanged on invalid input */
    } else if (rc != -1) {
        abort();
    }
    round_trip(data, size);
out:
    sg_buf_free(&dec);
    return 0;
}
