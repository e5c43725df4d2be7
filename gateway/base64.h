/* base64.h - RFC 4648 base64 (standard alphabet, padded), as Engine.IO uses
 * for binary packets in polling payloads. Pure functions. */
#ifndef SG_BASE64_H
#define SG_BASE64_H

#include "buf.h"

/* Append the encoding of in[0..n) to out. 0 or -1 (ENOMEM). */
int sg_base64_encode(sg_buf *out, const void *in, size_t n);
/* Append the decoded bytes of in[0..n) to out. Padded and unpadded input
 * are accepted; a character outside the alphabet, a misplaced '=', or a
 * length of 4k+1 is an error.
 * Returns 0, -1 on ENOMEM, -2 on invalid input (out unchanged). */
int sg_base64_decode(sg_buf *out, const char *in, size_t n);

#endif
