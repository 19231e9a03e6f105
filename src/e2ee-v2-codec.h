/* purple-e2ee — big-endian readers and writers for the local v2 state
 * formats (e2ee-v2own.c, e2ee-v2peer.c).  Not part of the public API.
 * A reader that runs out sets ok to FALSE and from then on reads zeros.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <string.h>
#include <glib.h>

typedef struct {
  const guint8 *p;
  gsize left;
  gboolean ok;
} E2eeV2Reader;

static inline void
e2ee_v2r_init (E2eeV2Reader *r, const guint8 *data, gsize len)
{
  r->p = data;
  r->left = len;
  r->ok = TRUE;
}

static inline const guint8 *
e2ee_v2r_take (E2eeV2Reader *r, gsize n)
{
  const guint8 *at = r->p;

  if (!r->ok || r->left < n)
    {
      r->ok = FALSE;
      return NULL;
    }
  r->p += n;
  r->left -= n;
  return at;
}

static inline guint64
e2ee_v2r_uint (E2eeV2Reader *r, guint bytes)
{
  const guint8 *at = e2ee_v2r_take (r, bytes);
  guint64 v = 0;

  for (guint i = 0; at && i < bytes; i++)
    v = (v << 8) | at[i];
  return v;
}

static inline void
e2ee_v2w_uint (GByteArray *out, guint64 v, guint bytes)
{
  guint8 b[8];

  for (guint i = 0; i < bytes; i++)
    b[i] = (guint8) (v >> (8 * (bytes - 1 - i)));
  g_byte_array_append (out, b, bytes);
}
