/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-aead.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-wipe.h"

struct _E2eeAead {
  gcry_cipher_hd_t hd;
};

static gboolean
crypto_failed (GError **error, const char *what, gcry_error_t err)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "%s: %s", what, gcry_strerror (err));
  return FALSE;
}

E2eeAead *
e2ee_aead_new (const guint8 key[E2EE_AEAD_KEY_LEN], GError **error)
{
  gcry_cipher_hd_t hd = NULL;
  gcry_error_t err;
  E2eeAead *aead;

  if (!e2ee_gcrypt_init (error))
    return NULL;
  /* Not GCRY_CIPHER_SECURE: see e2ee-aead.h. */
  err = gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0);
  if (!err)
    err = gcry_cipher_setkey (hd, key, E2EE_AEAD_KEY_LEN);
  if (err)
    {
      gcry_cipher_close (hd);
      crypto_failed (error, "AES-256-GCM set-up failed", err);
      return NULL;
    }
  aead = g_new0 (E2eeAead, 1);
  aead->hd = hd;
  return aead;
}

void
e2ee_aead_free (E2eeAead *aead)
{
  if (aead == NULL)
    return;
  gcry_cipher_close (aead->hd); /* wipes the key schedule */
  g_free (aead);
}

/* ---- cache ------------------------------------------------------------ */

typedef struct {
  guint8 *key;             /* E2EE_AEAD_KEY_LEN, in the key arena */
  E2eeAead *aead;
  GList link;              /* in the LRU queue, most recent at the head */
} CacheEntry;

struct _E2eeAeadCache {
  GHashTable *entries;     /* key bytes (in the entry) -> CacheEntry* */
  GQueue lru;
  guint max;
};

static guint
key_hash (gconstpointer key)
{
  guint h;

  /* The keys are HKDF output: any four bytes are uniform. */
  memcpy (&h, key, sizeof h);
  return h;
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  return e2ee_ct_equal (a, b, E2EE_AEAD_KEY_LEN);
}

static void
entry_free (CacheEntry *entry)
{
  e2ee_aead_free (entry->aead);
  e2ee_secure_free (entry->key, E2EE_AEAD_KEY_LEN);
  e2ee_wipe (entry, sizeof *entry);
  g_free (entry);
}

E2eeAeadCache *
e2ee_aead_cache_new (guint max)
{
  E2eeAeadCache *cache = g_new0 (E2eeAeadCache, 1);

  cache->entries = g_hash_table_new_full (key_hash, key_equal, NULL,
                                          (GDestroyNotify) entry_free);
  g_queue_init (&cache->lru);
  cache->max = MAX (max, E2EE_AEAD_CACHE_MIN);
  return cache;
}

void
e2ee_aead_cache_free (E2eeAeadCache *cache)
{
  if (cache == NULL)
    return;
  g_hash_table_destroy (cache->entries);
  g_free (cache);
}

guint
e2ee_aead_cache_size (const E2eeAeadCache *cache)
{
  return g_hash_table_size (cache->entries);
}

E2eeAead *
e2ee_aead_cache_get (E2eeAeadCache *cache, const guint8 key[E2EE_AEAD_KEY_LEN],
                     GError **error)
{
  CacheEntry *entry = g_hash_table_lookup (cache->entries, key);
  E2eeAead *aead;

  if (entry != NULL)
    {
      g_queue_unlink (&cache->lru, &entry->link);
      g_queue_push_head_link (&cache->lru, &entry->link);
      return entry->aead;
    }
  if (!(aead = e2ee_aead_new (key, error)))
    return NULL;
  /* Only the least recently used handle goes, never the whole cache: the
   * caller may still hold handles it got just before (one per recipient
   * of the envelope it is sealing). */
  if (g_hash_table_size (cache->entries) >= cache->max)
    {
      CacheEntry *old = g_queue_peek_tail_link (&cache->lru)->data;

      g_queue_unlink (&cache->lru, &old->link);
      g_hash_table_remove (cache->entries, old->key);
    }
  entry = g_new0 (CacheEntry, 1);
  entry->key = e2ee_secure_alloc (E2EE_AEAD_KEY_LEN);
  memcpy (entry->key, key, E2EE_AEAD_KEY_LEN);
  entry->aead = aead;
  entry->link.data = entry;
  g_queue_push_head_link (&cache->lru, &entry->link);
  g_hash_table_insert (cache->entries, entry->key, entry);
  return aead;
}

/* Resets the handle and sets IV and AAD: libgcrypt would silently use a
 * zero IV if none were set, so every operation starts here. */
static gboolean
start (E2eeAead *aead, const guint8 iv[E2EE_AEAD_IV_LEN],
       const guint8 *aad, gsize aad_len, GError **error)
{
  gcry_error_t err = gcry_cipher_reset (aead->hd);

  if (!err)
    err = gcry_cipher_setiv (aead->hd, iv, E2EE_AEAD_IV_LEN);
  if (!err && aad_len)
    err = gcry_cipher_authenticate (aead->hd, aad, aad_len);
  if (err)
    return crypto_failed (error, "AES-256-GCM failed", err);
  return TRUE;
}

gboolean
e2ee_aead_seal (E2eeAead *aead, const guint8 iv[E2EE_AEAD_IV_LEN],
                const guint8 *aad, gsize aad_len,
                const guint8 *plaintext, gsize len,
                guint8 *ciphertext, guint8 tag[E2EE_AEAD_TAG_LEN], GError **error)
{
  gcry_error_t err;

  g_return_val_if_fail (aead != NULL && iv != NULL, FALSE);
  if (!start (aead, iv, aad, aad_len, error))
    return FALSE;
  err = gcry_cipher_final (aead->hd);
  if (!err)
    err = gcry_cipher_encrypt (aead->hd, ciphertext, len, plaintext, len);
  if (!err)
    err = gcry_cipher_gettag (aead->hd, tag, E2EE_AEAD_TAG_LEN);
  if (err)
    {
      e2ee_wipe (ciphertext, len);
      return crypto_failed (error, "AES-256-GCM encryption failed", err);
    }
  return TRUE;
}

gboolean
e2ee_aead_open (E2eeAead *aead, const guint8 iv[E2EE_AEAD_IV_LEN],
                const guint8 *aad, gsize aad_len,
                const guint8 *ciphertext, gsize len,
                const guint8 tag[E2EE_AEAD_TAG_LEN],
                guint8 *plaintext, GError **error)
{
  gcry_error_t err;

  g_return_val_if_fail (aead != NULL && iv != NULL && tag != NULL, FALSE);
  if (!start (aead, iv, aad, aad_len, error))
    {
      e2ee_wipe (plaintext, len);
      return FALSE;
    }
  err = gcry_cipher_final (aead->hd);
  if (!err)
    err = gcry_cipher_decrypt (aead->hd, plaintext, len, ciphertext, len);
  /* The tag length is ours to fix at 16: checktag would accept a prefix. */
  if (!err)
    err = gcry_cipher_checktag (aead->hd, tag, E2EE_AEAD_TAG_LEN);
  if (err)
    {
      e2ee_wipe (plaintext, len);
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG,
                           "authentication failed: the message was altered or "
                           "not encrypted for this key");
      return FALSE;
    }
  return TRUE;
}

gboolean
e2ee_aead_open_checked (const guint8 *key, gsize key_len,
                        const guint8 *iv, gsize iv_len,
                        const guint8 *aad, gsize aad_len,
                        const guint8 *ciphertext, gsize len,
                        const guint8 *tag, gsize tag_len,
                        guint8 *plaintext, GError **error)
{
  E2eeAead *aead;
  gboolean ok;

  if (key_len != E2EE_AEAD_KEY_LEN || iv_len != E2EE_AEAD_IV_LEN
      || tag_len != E2EE_AEAD_TAG_LEN)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_AEAD_PARAM,
                   "AES-GCM needs a 32-byte key, a 12-byte IV and a 16-byte tag "
                   "(got %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT ")",
                   key_len, iv_len, tag_len);
      e2ee_wipe (plaintext, len);
      return FALSE;
    }
  if (!(aead = e2ee_aead_new (key, error)))
    return FALSE;
  ok = e2ee_aead_open (aead, iv, aad, aad_len, ciphertext, len, tag, plaintext, error);
  e2ee_aead_free (aead);
  return ok;
}

void
e2ee_aead_random_iv (guint8 iv[E2EE_AEAD_IV_LEN])
{
  gcry_create_nonce (iv, E2EE_AEAD_IV_LEN);
}

void
e2ee_random_key (guint8 *out, gsize len)
{
  gcry_randomize (out, len, GCRY_STRONG_RANDOM);
}
