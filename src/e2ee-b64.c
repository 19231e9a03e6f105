/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-wipe.h"

static const char alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

gsize
e2ee_b64url_encoded_len (gsize len)
{
  return (len / 3) * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

char *
e2ee_b64url_encode (const guint8 *data, gsize len)
{
  char *out = g_malloc (e2ee_b64url_encoded_len (len) + 1);
  char *p = out;
  gsize i = 0;

  for (; i + 3 <= len; i += 3)
    {
      guint32 v = (guint32) data[i] << 16 | (guint32) data[i + 1] << 8 | data[i + 2];
      *p++ = alphabet[(v >> 18) & 63];
      *p++ = alphabet[(v >> 12) & 63];
      *p++ = alphabet[(v >> 6) & 63];
      *p++ = alphabet[v & 63];
    }
  if (len - i == 1)
    {
      guint32 v = (guint32) data[i] << 16;
      *p++ = alphabet[(v >> 18) & 63];
      *p++ = alphabet[(v >> 12) & 63];
    }
  else if (len - i == 2)
    {
      guint32 v = (guint32) data[i] << 16 | (guint32) data[i + 1] << 8;
      *p++ = alphabet[(v >> 18) & 63];
      *p++ = alphabet[(v >> 12) & 63];
      *p++ = alphabet[(v >> 6) & 63];
    }
  *p = '\0';
  return out;
}

static int
decode_char (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

guint8 *
e2ee_b64url_decode (const char *text, gsize text_len, gsize *out_len,
                    GError **error)
{
  gsize rem = text_len % 4;
  gsize n = (text_len / 4) * 3 + (rem ? rem - 1 : 0);
  guint8 *out;
  guint32 acc = 0;
  int bits = 0;
  gsize o = 0;

  if (rem == 1)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                   "invalid base64url length %" G_GSIZE_FORMAT, text_len);
      return NULL;
    }
  out = g_malloc (n + 1);
  for (gsize i = 0; i < text_len; i++)
    {
      int v = decode_char (text[i]);
      if (v < 0)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                       "invalid base64url character at offset %" G_GSIZE_FORMAT, i);
          goto fail;
        }
      acc = (acc << 6) | (guint32) v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          out[o++] = (guint8) (acc >> bits);
          acc &= (1u << bits) - 1;
        }
    }
  if (acc != 0)
    {
      /* Left-over bits must be zero, else two texts decode alike. */
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                           "non-canonical base64url (trailing bits set)");
      goto fail;
    }
  g_assert (o == n);
  out[n] = 0;
  if (out_len)
    *out_len = n;
  return out;

fail:
  /* The text may have been a private scalar: wipe what was decoded. */
  e2ee_secret_free (out, n + 1);
  return NULL;
}
