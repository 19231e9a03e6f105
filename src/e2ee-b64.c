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

  e2ee_b64url_encode_into (data, len, out);
  return out;
}

gsize
e2ee_b64url_encode_into (const guint8 *data, gsize len, char *out)
{
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
  return (gsize) (p - out);
}

/* Value of each byte in the base64url alphabet, -1 outside it. */
static const gint8 decode_table[256] = {
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
  52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
  -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
  15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
  -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
  41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

guint8 *
e2ee_b64url_decode (const char *text, gsize text_len, gsize *out_len,
                    GError **error)
{
  const guint8 *in = (const guint8 *) text;
  gsize rem = text_len % 4;
  gsize n = (text_len / 4) * 3 + (rem ? rem - 1 : 0);
  gsize full = text_len - rem;
  guint8 *out;
  guint32 acc = 0;
  gsize o = 0, i = 0;

  if (rem == 1)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                   "invalid base64url length %" G_GSIZE_FORMAT, text_len);
      return NULL;
    }
  out = g_malloc (n + 1);
  /* Whole quads: any invalid character makes the OR of the values negative. */
  for (; i < full; i += 4)
    {
      gint32 a = decode_table[in[i]], b = decode_table[in[i + 1]];
      gint32 c = decode_table[in[i + 2]], d = decode_table[in[i + 3]];

      if ((a | b | c | d) < 0)
        goto bad_char;
      acc = (guint32) a << 18 | (guint32) b << 12 | (guint32) c << 6 | (guint32) d;
      out[o++] = (guint8) (acc >> 16);
      out[o++] = (guint8) (acc >> 8);
      out[o++] = (guint8) acc;
    }
  if (rem)
    {
      gint32 a = decode_table[in[i]], b = decode_table[in[i + 1]];
      gint32 c = rem == 3 ? decode_table[in[i + 2]] : 0;

      if ((a | b | c) < 0)
        goto bad_char;
      acc = (guint32) a << 18 | (guint32) b << 12 | (guint32) c << 6;
      out[o++] = (guint8) (acc >> 16);
      if (rem == 3)
        out[o++] = (guint8) (acc >> 8);
      /* Left-over bits must be zero, else two texts decode alike. */
      if ((rem == 2 && (acc & 0xFFFF)) || (rem == 3 && (acc & 0xFF)))
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                               "non-canonical base64url (trailing bits set)");
          goto fail;
        }
    }
  g_assert (o == n);
  out[n] = 0;
  if (out_len)
    *out_len = n;
  return out;

bad_char:
  {
    gsize at = i;
    while (at < text_len && decode_table[in[at]] >= 0)
      at++;
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                 "invalid base64url character at offset %" G_GSIZE_FORMAT, at);
  }
fail:
  /* The text may have been a private scalar: wipe what was decoded. */
  e2ee_secret_free (out, n + 1);
  return NULL;
}
