/* purple-e2ee — strict unpadded base64url (RFC 4648 §5).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Encodes @len bytes as unpadded base64url.  Returns a new string. */
char *e2ee_b64url_encode (const guint8 *data, gsize len);

/* Decodes exactly @text_len characters of unpadded base64url.  Rejects
 * padding, whitespace, characters outside the alphabet, a length of 1 mod 4
 * and non-zero trailing bits (so every byte string has one encoding).
 * On success returns a new buffer (NUL-terminated for convenience) and its
 * length in @out_len; on failure NULL with E2EE_ERROR_JWK_BASE64 (callers
 * re-map the code where another one fits). */
guint8 *e2ee_b64url_decode (const char *text, gsize text_len, gsize *out_len,
                            GError **error);

/* Encodes into @out, which must hold e2ee_b64url_encoded_len(@len) + 1
 * bytes; returns the length written (without the NUL). */
gsize e2ee_b64url_encode_into (const guint8 *data, gsize len, char *out);

/* Length of the encoding of @len bytes. */
gsize e2ee_b64url_encoded_len (gsize len);

G_END_DECLS
