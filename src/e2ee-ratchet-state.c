/* The versioned session state blob (PROTOCOL.md §8.7).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-ratchet-private.h"
#include "e2ee-wipe.h"

#define MAGIC "PE2R"
#define FORMAT 1
#define CHAIN_LEN (4 + E2EE_EC_POINT_LEN)
#define SKIPPED_LEN (4 + 4 + 8 + 32)

void
e2ee_ratchet_skipped_add (E2eeRatchet *s, const E2eeRatchetSkipped *items, guint n)
{
  if (n == 0) /* nothing skipped: items (and the buffer) may be NULL */
    return;
  if (s->n_skipped + n > s->cap_skipped)
    {
      guint cap = MAX (16u, s->cap_skipped);
      E2eeRatchetSkipped *grown;

      while (cap < s->n_skipped + n)
        cap *= 2;
      grown = (E2eeRatchetSkipped *) e2ee_secret_alloc (cap * sizeof *grown);
      if (s->n_skipped)
        memcpy (grown, s->skipped, s->n_skipped * sizeof *grown);
      e2ee_secret_free (s->skipped, s->cap_skipped * sizeof *grown);
      s->skipped = grown;
      s->cap_skipped = cap;
    }
  memcpy (s->skipped + s->n_skipped, items, n * sizeof *items);
  s->n_skipped += n;
}

void
e2ee_ratchet_skipped_remove (E2eeRatchet *s, guint i)
{
  g_assert (i < s->n_skipped);
  memmove (s->skipped + i, s->skipped + i + 1, (s->n_skipped - i - 1) * sizeof *s->skipped);
  s->n_skipped--;
  e2ee_wipe (s->skipped + s->n_skipped, sizeof *s->skipped);
}

void
e2ee_ratchet_skipped_clear (E2eeRatchet *s)
{
  e2ee_secret_free (s->skipped, s->cap_skipped * sizeof *s->skipped);
  s->skipped = NULL;
  s->n_skipped = s->cap_skipped = 0;
}

static void
put32 (GByteArray *b, guint32 v)
{
  guint8 p[4] = { v >> 24, v >> 16, v >> 8, v };
  g_byte_array_append (b, p, 4);
}

GBytes *
e2ee_ratchet_serialize (const E2eeRatchet *s)
{
  /* Sized exactly, so the array never reallocates (g_realloc would leave
   * copies of the secrets behind unwiped). */
  gsize size = 4 + 2 + 8 + 32 + 32 + 1 + (s->dhs ? 32 : 0) + 32 + 8 + 32 + 12
               + ((s->flags & E2EE_RATCHET_F_START) ? E2EE_V2_START_LEN : 0)
               + 1 + s->n_chains * CHAIN_LEN + 2 + s->n_skipped * SKIPPED_LEN;
  GByteArray *b = g_byte_array_sized_new (size);
  guint8 d[32], hdr[2] = { FORMAT, s->flags };
  guint8 have_dhs = s->dhs != NULL;
  gsize len;

  g_byte_array_append (b, (const guint8 *) MAGIC, 4);
  g_byte_array_append (b, hdr, 2);
  put32 (b, s->local_device);
  put32 (b, s->remote_device);
  g_byte_array_append (b, s->sid, 32);
  g_byte_array_append (b, s->rk, 32);
  g_byte_array_append (b, &have_dhs, 1);
  if (have_dhs)
    {
      if (!e2ee_ec_secret_to_bytes (s->dhs, d))
        g_assert_not_reached (); /* a validated scalar always has 32 bytes */
      g_byte_array_append (b, d, 32);
      e2ee_wipe (d, sizeof d);
    }
  g_byte_array_append (b, s->cks, 32);
  put32 (b, s->ns);
  put32 (b, s->pn);
  g_byte_array_append (b, s->ckr, 32);
  put32 (b, s->nr);
  put32 (b, s->next_serial);
  put32 (b, s->recv_since_send);
  if (s->flags & E2EE_RATCHET_F_START)
    {
      g_byte_array_append (b, &s->start.mode, 1);
      g_byte_array_append (b, s->start.initiator, E2EE_EC_POINT_LEN);
      put32 (b, s->start.spk_id);
      g_byte_array_append (b, &s->start.versions, 1);
    }
  {
    guint8 nc = (guint8) s->n_chains;
    g_byte_array_append (b, &nc, 1);
  }
  for (guint i = 0; i < s->n_chains; i++)
    {
      put32 (b, s->chains[i].serial);
      g_byte_array_append (b, s->chains[i].dh, E2EE_EC_POINT_LEN);
    }
  {
    guint8 ns[2] = { s->n_skipped >> 8, s->n_skipped };
    g_byte_array_append (b, ns, 2);
  }
  for (guint i = 0; i < s->n_skipped; i++)
    {
      const E2eeRatchetSkipped *e = &s->skipped[i];
      put32 (b, e->serial);
      put32 (b, e->n);
      put32 (b, (guint32) (e->time >> 32));
      put32 (b, (guint32) e->time);
      g_byte_array_append (b, e->mk, 32);
    }
  len = b->len;
  g_assert (len == size);
  return g_bytes_new_take (g_byte_array_free (b, FALSE), len);
}

typedef struct {
  const guint8 *p;
  gsize left;
} Reader;

static gboolean
take (Reader *r, void *out, gsize n)
{
  if (r->left < n)
    return FALSE;
  memcpy (out, r->p, n);
  r->p += n;
  r->left -= n;
  return TRUE;
}

static gboolean
take32 (Reader *r, guint32 *v)
{
  guint8 p[4];

  if (!take (r, p, 4))
    return FALSE;
  *v = (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
  return TRUE;
}

static gboolean
valid_point (const guint8 p[E2EE_EC_POINT_LEN])
{
  E2eeKey *k = e2ee_ec_point_decode (p, NULL);

  e2ee_key_unref (k);
  return k != NULL;
}

E2eeRatchet *
e2ee_ratchet_deserialize (const guint8 *blob, gsize len, GError **error)
{
  g_autoptr (E2eeRatchet) s = e2ee_ratchet_alloc ();
  Reader r = { blob, len };
  guint8 magic[4], hdr[2], have_dhs, d[32], nc, ns[2];
  const char *why = "truncated";
  guint n_skipped;

  if (!take (&r, magic, 4) || memcmp (magic, MAGIC, 4) != 0)
    {
      why = "not a session state";
      goto bad;
    }
  if (!take (&r, hdr, 2))
    goto bad;
  if (hdr[0] != FORMAT)
    {
      why = hdr[0] > FORMAT ? "written by a newer format" : "unknown format";
      goto bad;
    }
  s->flags = hdr[1];
  if ((s->flags & ~E2EE_RATCHET_F_ALL) != 0)
    {
      why = "reserved flag bits set";
      goto bad;
    }
  if (!take32 (&r, &s->local_device) || !take32 (&r, &s->remote_device)
      || !take (&r, s->sid, 32) || !take (&r, s->rk, 32) || !take (&r, &have_dhs, 1))
    goto bad;
  if (have_dhs > 1)
    {
      why = "bad ratchet key marker";
      goto bad;
    }
  if (have_dhs)
    {
      gboolean ok = take (&r, d, 32);
      if (ok)
        s->dhs = e2ee_ec_secret_from_bytes (d, NULL);
      e2ee_wipe (d, sizeof d);
      if (!ok)
        goto bad;
      if (s->dhs == NULL)
        {
          why = "bad ratchet scalar";
          goto bad;
        }
    }
  if (!take (&r, s->cks, 32) || !take32 (&r, &s->ns) || !take32 (&r, &s->pn)
      || !take (&r, s->ckr, 32) || !take32 (&r, &s->nr) || !take32 (&r, &s->next_serial)
      || !take32 (&r, &s->recv_since_send))
    goto bad;
  if (s->flags & E2EE_RATCHET_F_START)
    {
      if (!take (&r, &s->start.mode, 1) || !take (&r, s->start.initiator, E2EE_EC_POINT_LEN)
          || !take32 (&r, &s->start.spk_id) || !take (&r, &s->start.versions, 1))
        goto bad;
      if ((s->start.mode != 1 && s->start.mode != 2) || !valid_point (s->start.initiator)
          || !(s->start.versions & 0x02))
        {
          why = "bad start prefix";
          goto bad;
        }
    }
  if (!take (&r, &nc, 1))
    goto bad;
  if (nc > E2EE_RATCHET_MAX_CHAINS)
    {
      why = "too many chains";
      goto bad;
    }
  for (guint i = 0; i < nc; i++)
    {
      if (!take32 (&r, &s->chains[i].serial) || !take (&r, s->chains[i].dh, E2EE_EC_POINT_LEN))
        goto bad;
      if ((i > 0 && s->chains[i].serial <= s->chains[i - 1].serial)
          || s->chains[i].serial >= s->next_serial || !valid_point (s->chains[i].dh))
        {
          why = "bad chain";
          goto bad;
        }
    }
  s->n_chains = nc;
  if (!take (&r, ns, 2))
    goto bad;
  n_skipped = (guint) ns[0] << 8 | ns[1];
  if (n_skipped > E2EE_RATCHET_MAX_SKIPPED)
    {
      why = "too many skipped keys";
      goto bad;
    }
  if (r.left != (gsize) n_skipped * SKIPPED_LEN)
    {
      why = r.left < (gsize) n_skipped * SKIPPED_LEN ? "truncated" : "trailing bytes";
      goto bad;
    }
  for (guint i = 0; i < n_skipped; i++)
    {
      E2eeRatchetSkipped e;
      guint32 hi, lo;
      gboolean known = FALSE;

      take32 (&r, &e.serial);
      take32 (&r, &e.n);
      take32 (&r, &hi);
      take32 (&r, &lo);
      take (&r, e.mk, 32);
      e.time = (guint64) hi << 32 | lo;
      for (guint c = 0; c < nc; c++)
        known |= s->chains[c].serial == e.serial;
      if (known)
        e2ee_ratchet_skipped_add (s, &e, 1);
      e2ee_wipe (&e, sizeof e);
      if (!known)
        {
          why = "skipped key of an unknown chain";
          goto bad;
        }
    }
  if (((s->flags & E2EE_RATCHET_F_HAVE_CKS) && s->dhs == NULL)
      || ((s->flags & (E2EE_RATCHET_F_HAVE_CKR | E2EE_RATCHET_F_NEED_DHS)) && nc == 0)
      || (!(s->flags & E2EE_RATCHET_F_HAVE_CKS) && !(s->flags & E2EE_RATCHET_F_NEED_DHS)))
    {
      why = "inconsistent flags";
      goto bad;
    }
  return g_steal_pointer (&s);

bad:
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_STATE, "session state rejected: %s", why);
  return NULL;
}
