/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-v2-codec.h"
#include "e2ee-v2own.h"
#include "e2ee-v2peer.h"
#include "e2ee-wipe.h"

#define PEER_MAGIC "PE2P"
#define PEER_FORMAT 1
#define FLAG_SIGN 0x01
#define FLAG_PREKEY 0x02
#define FLAG_SEEN 0x04
/* A state blob is at most 614 + 96 000 bytes (PROTOCOL.md §8). */
#define SESSION_BLOB_MAX (614 + 2000 * 48)

E2eeV2Peer *
e2ee_v2peer_new (void)
{
  E2eeV2Peer *peer = g_new0 (E2eeV2Peer, 1);

  peer->sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_ratchet_free);
  return peer;
}

void
e2ee_v2peer_free (E2eeV2Peer *peer)
{
  if (peer == NULL)
    return;
  g_clear_pointer (&peer->sign_pub, e2ee_key_unref);
  g_clear_pointer (&peer->prekey, g_bytes_unref);
  g_ptr_array_unref (peer->sessions);
  g_free (peer);
}

GBytes *
e2ee_v2peer_serialize (const E2eeV2Peer *peer)
{
  guint8 flags = (peer->sign_pub ? FLAG_SIGN : 0) | (peer->prekey ? FLAG_PREKEY : 0)
                 | (peer->prekey_seen ? FLAG_SEEN : 0);
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_bytes_free);
  gsize size = 4 + 1 + 1 + 2 * E2EE_KEY_COORD_LEN + 8 + 2
               + (peer->prekey ? g_bytes_get_size (peer->prekey) : 0) + 1;
  GByteArray *out;

  /* The session blobs hold every secret of the sessions: the buffer is
   * sized once, so no grown-out copy is left in freed memory unwiped. */
  for (guint i = 0; i < peer->sessions->len; i++)
    {
      GBytes *blob = e2ee_ratchet_serialize (peer->sessions->pdata[i]);
      size += 4 + g_bytes_get_size (blob);
      g_ptr_array_add (blobs, blob);
    }
  out = g_byte_array_sized_new ((guint) size);

  g_byte_array_append (out, (const guint8 *) PEER_MAGIC, 4);
  e2ee_v2w_uint (out, PEER_FORMAT, 1);
  e2ee_v2w_uint (out, flags, 1);
  if (peer->sign_pub)
    {
      g_byte_array_append (out, e2ee_key_get_x (peer->sign_pub), E2EE_KEY_COORD_LEN);
      g_byte_array_append (out, e2ee_key_get_y (peer->sign_pub), E2EE_KEY_COORD_LEN);
    }
  if (peer->prekey)
    {
      gsize n = 0;
      const guint8 *rec = g_bytes_get_data (peer->prekey, &n);

      e2ee_v2w_uint (out, peer->prekey_expires, 8);
      e2ee_v2w_uint (out, n, 2);
      g_byte_array_append (out, rec, (guint) n);
    }
  e2ee_v2w_uint (out, peer->sessions->len, 1);
  for (guint i = 0; i < blobs->len; i++)
    {
      gsize n = 0;
      const guint8 *data = g_bytes_get_data (blobs->pdata[i], &n);

      e2ee_v2w_uint (out, n, 4);
      g_byte_array_append (out, data, (guint) n);
    }
  return g_byte_array_free_to_bytes (out);
}

static gboolean
corrupt (GError **error)
{
  g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                       "the keyring's protocol v2 state of a buddy's device is damaged");
  return FALSE;
}

E2eeV2Peer *
e2ee_v2peer_parse (const guint8 *data, gsize len, GError **error)
{
  g_autoptr (E2eeV2Peer) peer = e2ee_v2peer_new ();
  E2eeV2Reader r;
  const guint8 *magic;
  guint flags, n;

  e2ee_v2r_init (&r, data, len);
  magic = e2ee_v2r_take (&r, 4);
  if (magic == NULL || memcmp (magic, PEER_MAGIC, 4) != 0 || e2ee_v2r_uint (&r, 1) != PEER_FORMAT)
    goto bad;
  flags = (guint) e2ee_v2r_uint (&r, 1);
  if (flags & ~(FLAG_SIGN | FLAG_PREKEY | FLAG_SEEN))
    goto bad;
  if (flags & FLAG_SIGN)
    {
      const guint8 *x = e2ee_v2r_take (&r, E2EE_KEY_COORD_LEN);
      const guint8 *y = e2ee_v2r_take (&r, E2EE_KEY_COORD_LEN);
      if (!r.ok || !(peer->sign_pub = e2ee_key_new_public (x, y, NULL)))
        goto bad;
    }
  if (flags & FLAG_PREKEY)
    {
      gsize n_rec;
      const guint8 *rec;

      peer->prekey_expires = e2ee_v2r_uint (&r, 8);
      n_rec = (gsize) e2ee_v2r_uint (&r, 2);
      rec = e2ee_v2r_take (&r, n_rec);
      if (!r.ok || n_rec > E2EE_PREKEY_RECORD_MAX)
        goto bad;
      peer->prekey = g_bytes_new (rec, n_rec);
    }
  peer->prekey_seen = (flags & FLAG_SEEN) != 0;
  n = (guint) e2ee_v2r_uint (&r, 1);
  if (!r.ok || n > E2EE_V2PEER_MAX_SESSIONS)
    goto bad;
  for (guint i = 0; i < n; i++)
    {
      gsize blob_len = (gsize) e2ee_v2r_uint (&r, 4);
      const guint8 *blob = blob_len <= SESSION_BLOB_MAX ? e2ee_v2r_take (&r, blob_len) : NULL;
      E2eeRatchet *session;

      if (blob == NULL || !(session = e2ee_ratchet_deserialize (blob, blob_len, NULL)))
        goto bad;
      g_ptr_array_add (peer->sessions, session);
    }
  if (r.left != 0)
    goto bad;
  return g_steal_pointer (&peer);

bad:
  corrupt (error);
  return NULL;
}

gboolean
e2ee_v2peer_learn (E2eeV2Peer *peer, const E2eeKey *device_key, guint64 now)
{
  const E2eeKey *sign = e2ee_key_get_sign_pub (device_key);
  GBytes *record = e2ee_key_get_prekey_record (device_key);
  g_autoptr (E2eePrekey) prekey = NULL;
  gboolean changed = FALSE;
  gsize n = 0;
  const guint8 *rec;

  if (sign == NULL || record == NULL)
    return FALSE;
  if (peer->sign_pub == NULL)
    {
      /* Pinned with the device: whoever later publishes another signing
       * key for it (a server) cannot have its prekeys used. */
      peer->sign_pub = e2ee_key_ref ((E2eeKey *) sign);
      changed = TRUE;
    }
  else if (!e2ee_key_equal (peer->sign_pub, sign))
    return changed;
  rec = g_bytes_get_data (record, &n);
  prekey = e2ee_prekey_verify (rec, n, peer->sign_pub, device_key,
                               e2ee_v2_device_tag (device_key), now, NULL);
  if (prekey == NULL)
    return changed;
  if (!peer->prekey_seen)
    changed = peer->prekey_seen = TRUE;
  if (peer->prekey == NULL || prekey->expires > peer->prekey_expires)
    {
      g_clear_pointer (&peer->prekey, g_bytes_unref);
      peer->prekey = g_bytes_ref (record);
      peer->prekey_expires = prekey->expires;
      changed = TRUE;
    }
  return changed;
}

E2eePrekey *
e2ee_v2peer_prekey (const E2eeV2Peer *peer, const E2eeKey *device_key, guint64 now)
{
  gsize n = 0;
  const guint8 *rec;

  if (peer->prekey == NULL || peer->sign_pub == NULL)
    return NULL;
  rec = g_bytes_get_data (peer->prekey, &n);
  return e2ee_prekey_verify (rec, n, peer->sign_pub, device_key,
                             e2ee_v2_device_tag (device_key), now, NULL);
}

void
e2ee_v2peer_add_session (E2eeV2Peer *peer, E2eeRatchet *session, gboolean send_on_it)
{
  if (send_on_it)
    g_ptr_array_insert (peer->sessions, 0, session);
  else
    g_ptr_array_insert (peer->sessions, MIN (1, (gint) peer->sessions->len), session);
  while (peer->sessions->len > E2EE_V2PEER_MAX_SESSIONS)
    g_ptr_array_remove_index (peer->sessions, peer->sessions->len - 1);
}
