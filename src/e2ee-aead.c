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
  /* SECURE keeps the expanded key schedule in locked memory. */
  err = gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM,
                          GCRY_CIPHER_SECURE);
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
  gcry_cipher_final (aead->hd);
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
    return FALSE;
  gcry_cipher_final (aead->hd);
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
