/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-random.h"
#include "e2ee-v2-codec.h"
#include "e2ee-v2own.h"
#include "e2ee-wipe.h"

#define OWN_MAGIC "PE2O"
#define OWN_FORMAT 1

guint32
e2ee_v2_device_tag (const E2eeKey *identity)
{
  const guint8 *id = e2ee_key_get_device_id (identity);

  return ((guint32) id[0] << 24) | ((guint32) id[1] << 16) | ((guint32) id[2] << 8) | id[3];
}

static gboolean
list_contains (GPtrArray *list, const guint8 tag[32])
{
  for (guint i = 0; i < list->len; i++)
    if (memcmp (g_bytes_get_data (list->pdata[i], NULL), tag, 32) == 0)
      return TRUE;
  return FALSE;
}

/* Appends, forgetting the oldest beyond @max. */
static void
list_add (GPtrArray *list, const guint8 tag[32], guint max)
{
  if (list->len >= max)
    g_ptr_array_remove_index (list, 0);
  g_ptr_array_add (list, g_bytes_new (tag, 32));
}

static void
list_write (GByteArray *out, GPtrArray *list)
{
  e2ee_v2w_uint (out, list->len, 2);
  for (guint i = 0; i < list->len; i++)
    g_byte_array_append (out, g_bytes_get_data (list->pdata[i], NULL), 32);
}

static gboolean
list_read (E2eeV2Reader *r, GPtrArray *list, guint max)
{
  guint n = (guint) e2ee_v2r_uint (r, 2);

  if (!r->ok || n > max)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const guint8 *tag = e2ee_v2r_take (r, 32);
      if (tag == NULL)
        return FALSE;
      g_ptr_array_add (list, g_bytes_new (tag, 32));
    }
  return TRUE;
}

static void
prekey_free (E2eeOwnPrekey *pk)
{
  e2ee_ec_secret_free (pk->secret);
  g_bytes_unref (pk->record);
  g_hash_table_destroy (pk->tags);
  g_ptr_array_unref (pk->pending_tags);
  g_free (pk);
}

static E2eeOwnPrekey *
prekey_new (guint32 id, guint64 created, E2eeEcSecret *secret, GBytes *record)
{
  E2eeOwnPrekey *pk = g_new0 (E2eeOwnPrekey, 1);

  pk->id = id;
  pk->created = created;
  pk->secret = secret;
  pk->record = record;
  pk->tags = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                    (GDestroyNotify) g_bytes_unref, NULL);
  pk->pending_tags = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  return pk;
}

static E2eeV2Own *
own_alloc (void)
{
  E2eeV2Own *own = g_new0 (E2eeV2Own, 1);

  own->prekeys = g_ptr_array_new_with_free_func ((GDestroyNotify) prekey_free);
  own->weak_tags = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  own->weak_pending = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  own->next_id = 1;
  return own;
}

E2eeV2Own *
e2ee_v2own_new (GError **error)
{
  g_autoptr (E2eeV2Own) own = own_alloc ();

  guint8 id[4];

  if (!(own->sign_key = e2ee_sign_key_generate (error)))
    return NULL;
  /* Prekey ids start anywhere, so a device restored from a backup (which
   * carries none of this) does not reuse the ids its buddies know. */
  e2ee_random_bytes (id, sizeof id, E2EE_RANDOM_NONCE);
  own->next_id = MAX (1u, ((guint32) id[0] << 24) | ((guint32) id[1] << 16)
                          | ((guint32) id[2] << 8) | id[3]);
  return g_steal_pointer (&own);
}

void
e2ee_v2own_free (E2eeV2Own *own)
{
  if (own == NULL)
    return;
  e2ee_sign_key_free (own->sign_key);
  g_ptr_array_unref (own->prekeys);
  g_ptr_array_unref (own->weak_tags);
  g_ptr_array_unref (own->weak_pending);
  g_free (own);
}

GBytes *
e2ee_v2own_serialize (const E2eeV2Own *own)
{
  gsize size = 4 + 1 + E2EE_KEY_COORD_LEN + 4 + 1 + 2 + 32 * own->weak_tags->len
               + 2 + 32 * own->weak_pending->len;
  GByteArray *out;
  guint8 d[E2EE_KEY_COORD_LEN];

  /* Sized once: a buffer that grew would leave copies of the scalars in
   * freed memory, unwiped. */
  for (guint i = 0; i < own->prekeys->len; i++)
    {
      const E2eeOwnPrekey *pk = own->prekeys->pdata[i];
      size += 4 + 8 + E2EE_KEY_COORD_LEN + 2 + g_bytes_get_size (pk->record)
              + 2 + 32 * g_hash_table_size (pk->tags) + 2 + 32 * pk->pending_tags->len;
    }
  out = g_byte_array_sized_new ((guint) size);

  g_byte_array_append (out, (const guint8 *) OWN_MAGIC, 4);
  e2ee_v2w_uint (out, OWN_FORMAT, 1);
  e2ee_sign_key_to_bytes (own->sign_key, d);
  g_byte_array_append (out, d, sizeof d);
  e2ee_v2w_uint (out, own->next_id, 4);
  e2ee_v2w_uint (out, own->prekeys->len, 1);
  for (guint i = 0; i < own->prekeys->len; i++)
    {
      const E2eeOwnPrekey *pk = own->prekeys->pdata[i];
      gsize rec_len = 0;
      const guint8 *rec = g_bytes_get_data (pk->record, &rec_len);
      GHashTableIter iter;
      gpointer tag;

      e2ee_v2w_uint (out, pk->id, 4);
      e2ee_v2w_uint (out, pk->created, 8);
      e2ee_ec_secret_to_bytes (pk->secret, d);
      g_byte_array_append (out, d, sizeof d);
      e2ee_v2w_uint (out, rec_len, 2);
      g_byte_array_append (out, rec, (guint) rec_len);
      e2ee_v2w_uint (out, g_hash_table_size (pk->tags), 2);
      g_hash_table_iter_init (&iter, pk->tags);
      while (g_hash_table_iter_next (&iter, &tag, NULL))
        g_byte_array_append (out, g_bytes_get_data (tag, NULL), 32);
      list_write (out, pk->pending_tags);
    }
  list_write (out, own->weak_tags);
  list_write (out, own->weak_pending);
  e2ee_wipe (d, sizeof d);
  /* The array's buffer holds scalars: e2ee_bytes_free wipes it. */
  return g_byte_array_free_to_bytes (out);
}

static gboolean
corrupt (GError **error)
{
  g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                       "the keyring's protocol v2 keys of this device are damaged");
  return FALSE;
}

static E2eeOwnPrekey *
parse_prekey (E2eeV2Reader *r, GError **error)
{
  guint32 id = (guint32) e2ee_v2r_uint (r, 4);
  guint64 created = e2ee_v2r_uint (r, 8);
  const guint8 *d = e2ee_v2r_take (r, E2EE_KEY_COORD_LEN);
  gsize rec_len = (gsize) e2ee_v2r_uint (r, 2);
  const guint8 *rec = e2ee_v2r_take (r, rec_len);
  guint n_tags = (guint) e2ee_v2r_uint (r, 2);
  E2eeEcSecret *secret;
  E2eeOwnPrekey *pk;

  if (!r->ok || rec_len > E2EE_PREKEY_RECORD_MAX || n_tags > E2EE_V2OWN_MAX_TAGS
      || !(secret = e2ee_ec_secret_from_bytes (d, NULL)))
    {
      corrupt (error);
      return NULL;
    }
  pk = prekey_new (id, created, secret, g_bytes_new (rec, rec_len));
  for (guint t = 0; t < n_tags; t++)
    {
      const guint8 *tag = e2ee_v2r_take (r, 32);
      if (tag == NULL)
        {
          prekey_free (pk);
          corrupt (error);
          return NULL;
        }
      g_hash_table_add (pk->tags, g_bytes_new (tag, 32));
    }
  if (!list_read (r, pk->pending_tags, E2EE_V2OWN_MAX_PENDING_TAGS))
    {
      prekey_free (pk);
      corrupt (error);
      return NULL;
    }
  return pk;
}

E2eeV2Own *
e2ee_v2own_parse (const guint8 *data, gsize len, GError **error)
{
  g_autoptr (E2eeV2Own) own = own_alloc ();
  E2eeV2Reader r;
  const guint8 *magic, *d;
  guint n;

  e2ee_v2r_init (&r, data, len);
  magic = e2ee_v2r_take (&r, 4);
  if (magic == NULL || memcmp (magic, OWN_MAGIC, 4) != 0 || e2ee_v2r_uint (&r, 1) != OWN_FORMAT)
    {
      corrupt (error);
      return NULL;
    }
  d = e2ee_v2r_take (&r, E2EE_KEY_COORD_LEN);
  own->next_id = (guint32) e2ee_v2r_uint (&r, 4);
  n = (guint) e2ee_v2r_uint (&r, 1);
  if (!r.ok || n > E2EE_V2OWN_MAX_PREKEYS || !(own->sign_key = e2ee_sign_key_from_bytes (d, NULL)))
    {
      corrupt (error);
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      E2eeOwnPrekey *pk = parse_prekey (&r, error);
      if (pk == NULL)
        return NULL;
      g_ptr_array_add (own->prekeys, pk);
    }
  if (!list_read (&r, own->weak_tags, E2EE_V2OWN_MAX_TAGS)
      || !list_read (&r, own->weak_pending, E2EE_V2OWN_MAX_PENDING_TAGS))
    {
      corrupt (error);
      return NULL;
    }
  if (r.left != 0)
    {
      corrupt (error);
      return NULL;
    }
  return g_steal_pointer (&own);
}

const E2eeOwnPrekey *
e2ee_v2own_current (const E2eeV2Own *own)
{
  return own->prekeys->len ? own->prekeys->pdata[own->prekeys->len - 1] : NULL;
}

E2eeOwnPrekey *
e2ee_v2own_find (E2eeV2Own *own, guint32 id)
{
  for (guint i = 0; i < own->prekeys->len; i++)
    {
      E2eeOwnPrekey *pk = own->prekeys->pdata[i];
      if (pk->id == id)
        return pk;
    }
  return NULL;
}

gboolean
e2ee_v2own_maintain (E2eeV2Own *own, const E2eeKey *identity, guint64 now, gboolean *changed,
                     GError **error)
{
  const E2eeOwnPrekey *cur = e2ee_v2own_current (own);

  *changed = FALSE;
  /* Deleting the private part is what makes first messages forward-secret. */
  for (guint i = own->prekeys->len; i-- > 0;)
    {
      E2eeOwnPrekey *pk = own->prekeys->pdata[i];
      if (pk != cur && e2ee_prekey_delete_due (pk->created, now))
        {
          g_ptr_array_remove_index (own->prekeys, i);
          *changed = TRUE;
        }
    }
  if (cur == NULL || e2ee_prekey_rotation_due (cur->created, now))
    {
      E2eeEcSecret *secret = NULL;
      GBytes *record = NULL;
      guint32 id = own->next_id;

      if (!e2ee_prekey_create (own->sign_key, identity, e2ee_v2_device_tag (identity), id, now,
                               E2EE_V2_VERSIONS, &secret, &record, error))
        return FALSE;
      own->next_id = id == G_MAXUINT32 ? 1 : id + 1;
      g_ptr_array_add (own->prekeys, prekey_new (id, now, secret, record));
      while (own->prekeys->len > E2EE_V2OWN_MAX_PREKEYS)
        g_ptr_array_remove_index (own->prekeys, 0);
      *changed = TRUE;
      cur = e2ee_v2own_current (own);
    }
  /* The old current one too, once its time is over (a clock that jumped). */
  if (own->prekeys->len > 1)
    for (guint i = own->prekeys->len - 1; i-- > 0;)
      {
        E2eeOwnPrekey *pk = own->prekeys->pdata[i];
        if (e2ee_prekey_delete_due (pk->created, now))
          {
            g_ptr_array_remove_index (own->prekeys, i);
            *changed = TRUE;
          }
      }
  return TRUE;
}

gboolean
e2ee_v2own_tag_seen (const E2eeOwnPrekey *prekey, const guint8 tag[32])
{
  g_autoptr (GBytes) key = g_bytes_new (tag, 32);

  return g_hash_table_contains (prekey->tags, key) || list_contains (prekey->pending_tags, tag);
}

gboolean
e2ee_v2own_tag_add (E2eeOwnPrekey *prekey, const guint8 tag[32], gboolean usable,
                    GError **error)
{
  if (!usable)
    {
      list_add (prekey->pending_tags, tag, E2EE_V2OWN_MAX_PENDING_TAGS);
      return TRUE;
    }
  if (g_hash_table_size (prekey->tags) >= E2EE_V2OWN_MAX_TAGS)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_START,
                   "too many session starts under one prekey; wait for the next one");
      return FALSE;
    }
  g_hash_table_add (prekey->tags, g_bytes_new (tag, 32));
  return TRUE;
}

gboolean
e2ee_v2own_weak_tag_seen (const E2eeV2Own *own, const guint8 tag[32])
{
  return list_contains (own->weak_tags, tag) || list_contains (own->weak_pending, tag);
}

void
e2ee_v2own_weak_tag_add (E2eeV2Own *own, const guint8 tag[32], gboolean usable)
{
  if (usable)
    list_add (own->weak_tags, tag, E2EE_V2OWN_MAX_TAGS);
  else
    list_add (own->weak_pending, tag, E2EE_V2OWN_MAX_PENDING_TAGS);
}
