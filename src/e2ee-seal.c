/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-aead.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-seal.h"
#include "e2ee-wipe.h"

#if GCRYPT_VERSION_NUMBER >= 0x010a00
#define HAVE_ARGON2 1
#define KDF_DEFAULT "argon2id"
#else
#define KDF_DEFAULT "scrypt"
#endif

struct _E2eeSeal {
  E2eeSealSetting params;
  guint8 *key;                  /* E2EE_AEAD_KEY_LEN */
  E2eeAead *aead;
};

static gboolean
kdf_supported (const char *name)
{
#ifdef HAVE_ARGON2
  if (strcmp (name, "argon2id") == 0)
    return TRUE;
#endif
  return strcmp (name, "scrypt") == 0;
}

static gboolean
params_valid (const E2eeSealSetting *p)
{
  if (memchr (p->kdf, '\0', sizeof p->kdf) == NULL || !kdf_supported (p->kdf))
    return FALSE;
  if (p->p < 1 || p->p > E2EE_SEAL_MAX_P)
    return FALSE;
  if (strcmp (p->kdf, "scrypt") == 0)
    return p->t == 1 && p->m >= 2 && p->m <= E2EE_SEAL_MAX_M && (p->m & (p->m - 1)) == 0;
  return p->t >= 1 && p->t <= E2EE_SEAL_MAX_T && p->m >= 8 * p->p && p->m <= E2EE_SEAL_MAX_M;
}

gboolean
e2ee_seal_is_weak (const E2eeSeal *seal)
{
  const E2eeSealSetting *p = &seal->params;

  if (p->p < E2EE_SEAL_MIN_P)
    return TRUE;
  if (strcmp (p->kdf, "scrypt") == 0)
    return p->m < E2EE_SEAL_SCRYPT_MIN_N;
  return p->t < E2EE_SEAL_ARGON2_MIN_T || p->m < E2EE_SEAL_ARGON2_MIN_M;
}

static gboolean
kdf_run (const E2eeSealSetting *p, const char *passphrase, guint8 out[32], GError **error)
{
  gcry_error_t err = 0;

#ifdef HAVE_ARGON2
  if (strcmp (p->kdf, "argon2id") == 0)
    {
      unsigned long args[4] = { 32, p->t, p->m, p->p };
      gcry_kdf_hd_t hd = NULL;

      err = gcry_kdf_open (&hd, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, args, 4,
                           passphrase, strlen (passphrase), p->salt, sizeof p->salt,
                           NULL, 0, NULL, 0);
      if (!err)
        err = gcry_kdf_compute (hd, NULL);
      if (!err)
        err = gcry_kdf_final (hd, 32, out);
      if (hd != NULL)
        gcry_kdf_close (hd);
    }
  else
#endif
    err = gcry_kdf_derive (passphrase, strlen (passphrase), GCRY_KDF_SCRYPT, p->m,
                           p->salt, sizeof p->salt, p->p, 32, out);
  if (err)
    {
      e2ee_wipe (out, 32);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "keyring: passphrase KDF %s failed: %s", p->kdf, gcry_strerror (err));
      return FALSE;
    }
  return TRUE;
}

/* HMAC-SHA256(master, label), cut to @out_len. */
static gboolean
expand (const guint8 master[32], const char *label, guint8 *out, gsize out_len,
        GError **error)
{
  guint8 mac[32];
  gcry_buffer_t iov[2] = { { 0 } };
  gcry_error_t err;

  iov[0].data = (void *) master;
  iov[0].len = 32;
  iov[1].data = (void *) label;
  iov[1].len = strlen (label);
  err = gcry_md_hash_buffers (GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC, mac, iov, 2);
  if (err)
    {
      e2ee_wipe (mac, sizeof mac);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "keyring: HMAC failed: %s", gcry_strerror (err));
      return FALSE;
    }
  memcpy (out, mac, out_len);
  e2ee_wipe (mac, sizeof mac);
  return TRUE;
}

/* The key and check value of @p (the same derivation as the sealed part of
 * a version 1 keyring.json, so those files open with this module). */
static E2eeSeal *
derive (const char *passphrase, const E2eeSealSetting *p, guint8 check[E2EE_SEAL_CHECK_LEN],
        GError **error)
{
  guint8 master[32];
  E2eeSeal *seal = g_new0 (E2eeSeal, 1);
  gboolean ok;

  seal->params = *p;
  seal->key = e2ee_secure_alloc (E2EE_AEAD_KEY_LEN);
  ok = kdf_run (p, passphrase, master, error)
       && expand (master, "purple-e2ee keyring seal key", seal->key, E2EE_AEAD_KEY_LEN, error)
       && expand (master, "purple-e2ee keyring check", check, E2EE_SEAL_CHECK_LEN, error);
  e2ee_wipe (master, sizeof master);
  if (ok)
    seal->aead = e2ee_aead_new (seal->key, error);
  if (seal->aead == NULL)
    {
      e2ee_wipe (check, E2EE_SEAL_CHECK_LEN);
      e2ee_seal_free (seal);
      return NULL;
    }
  return seal;
}

E2eeSeal *
e2ee_seal_new (const char *passphrase, GError **error)
{
  E2eeSealSetting p = { { 0 } };
  E2eeSeal *seal;

  if (passphrase == NULL || *passphrase == '\0')
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                   "keyring: the passphrase is empty");
      return NULL;
    }
  if (!e2ee_gcrypt_init (error))
    return NULL;
  g_strlcpy (p.kdf, KDF_DEFAULT, sizeof p.kdf);
  p.p = E2EE_SEAL_MIN_P;
  if (strcmp (p.kdf, "scrypt") == 0)
    {
      p.t = 1;
      p.m = E2EE_SEAL_SCRYPT_MIN_N;
    }
  else
    {
      p.t = E2EE_SEAL_ARGON2_MIN_T;
      p.m = E2EE_SEAL_ARGON2_MIN_M;
    }
  e2ee_random_key (p.salt, sizeof p.salt);
  seal = derive (passphrase, &p, p.check, error);
  if (seal != NULL)
    memcpy (seal->params.check, p.check, sizeof p.check);
  return seal;
}

E2eeSeal *
e2ee_seal_unlock (const char *passphrase, const E2eeSealSetting *params, GError **error)
{
  guint8 check[E2EE_SEAL_CHECK_LEN];
  E2eeSeal *seal;

  if (!params_valid (params))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                   "keyring: unsupported or out-of-range passphrase KDF parameters");
      return NULL;
    }
  if (passphrase == NULL || *passphrase == '\0')
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                   "keyring: the keyring is protected; a passphrase is needed");
      return NULL;
    }
  if (!e2ee_gcrypt_init (error))
    return NULL;
  seal = derive (passphrase, params, check, error);
  if (seal == NULL)
    return NULL;
  if (!e2ee_ct_equal (check, params->check, sizeof check))
    {
      e2ee_wipe (check, sizeof check);
      e2ee_seal_free (seal);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                   "keyring: wrong passphrase");
      return NULL;
    }
  e2ee_wipe (check, sizeof check);
  return seal;
}

void
e2ee_seal_free (E2eeSeal *seal)
{
  if (seal == NULL)
    return;
  e2ee_aead_free (seal->aead);
  e2ee_secure_free (seal->key, E2EE_AEAD_KEY_LEN);
  e2ee_wipe (&seal->params, sizeof seal->params);
  g_free (seal);
}

const E2eeSealSetting *
e2ee_seal_get_params (const E2eeSeal *seal)
{
  return &seal->params;
}

const guint8 *
e2ee_seal_get_key (const E2eeSeal *seal)
{
  return seal->key;
}

GBytes *
e2ee_seal_seal (const E2eeSeal *seal, const guint8 *aad, gsize aad_len,
                const guint8 *plain, gsize len, GError **error)
{
  guint8 *out = g_malloc (len + E2EE_SEAL_OVERHEAD);

  e2ee_aead_random_iv (out);
  if (!e2ee_aead_seal (seal->aead, out, aad, aad_len, plain, len,
                       out + E2EE_AEAD_IV_LEN, out + E2EE_AEAD_IV_LEN + len, error))
    {
      e2ee_secret_free (out, len + E2EE_SEAL_OVERHEAD);
      return NULL;
    }
  return g_bytes_new_take (out, len + E2EE_SEAL_OVERHEAD);
}

gboolean
e2ee_seal_open (const E2eeSeal *seal, const guint8 *aad, gsize aad_len,
                const guint8 *sealed, gsize sealed_len,
                guint8 *out, gsize out_len, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (sealed_len != out_len + E2EE_SEAL_OVERHEAD
      || !e2ee_aead_open (seal->aead, sealed, aad, aad_len, sealed + E2EE_AEAD_IV_LEN,
                          out_len, sealed + E2EE_AEAD_IV_LEN + out_len, out, &local))
    {
      e2ee_wipe (out, out_len);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
                   "keyring: a sealed value does not open (damaged, or moved from another row)");
      return FALSE;
    }
  return TRUE;
}
