/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-kdf.h"
#include "e2ee-wipe.h"

#define HASH_LEN 32
#define KDF_SALT "purple-e2ee/v1"
#define KDF_INFO_LABEL "purple-e2ee/v1 message key"

/* One HMAC-SHA256 over the concatenation of up to three parts. */
static gboolean
hmac_sha256 (const guint8 *key, gsize key_len,
             const guint8 *a, gsize a_len, const guint8 *b, gsize b_len,
             const guint8 *c, gsize c_len, guint8 out[HASH_LEN], GError **error)
{
  gcry_mac_hd_t hd = NULL;
  size_t out_len = HASH_LEN;
  gcry_error_t err;

  err = gcry_mac_open (&hd, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL);
  if (!err)
    err = gcry_mac_setkey (hd, key, key_len);
  if (!err && a_len)
    err = gcry_mac_write (hd, a, a_len);
  if (!err && b_len)
    err = gcry_mac_write (hd, b, b_len);
  if (!err && c_len)
    err = gcry_mac_write (hd, c, c_len);
  if (!err)
    err = gcry_mac_read (hd, out, &out_len);
  gcry_mac_close (hd);
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "HMAC-SHA256 failed: %s", gcry_strerror (err));
      return FALSE;
    }
  return TRUE;
}

gboolean
e2ee_hkdf_sha256 (const guint8 *salt, gsize salt_len,
                  const guint8 *ikm, gsize ikm_len,
                  const guint8 *info, gsize info_len,
                  guint8 *out, gsize out_len, GError **error)
{
  static const guint8 zero_salt[HASH_LEN] = { 0 };
  guint8 prk[HASH_LEN];
  guint8 t[HASH_LEN];
  gsize done = 0;
  gboolean ok = FALSE;

  if (out_len == 0 || out_len > 255 * HASH_LEN)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM,
                   "HKDF-SHA256 output length %" G_GSIZE_FORMAT " is not in [1, 8160]",
                   out_len);
      return FALSE;
    }
  if (!e2ee_gcrypt_init (error))
    return FALSE;
  if (salt_len == 0)
    {
      salt = zero_salt;
      salt_len = HASH_LEN;
    }
  /* Extract: PRK = HMAC(salt, IKM). */
  if (!hmac_sha256 (salt, salt_len, ikm, ikm_len, NULL, 0, NULL, 0, prk, error))
    goto out;
  /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i). */
  for (guint8 counter = 1; done < out_len; counter++)
    {
      gsize take;
      if (!hmac_sha256 (prk, HASH_LEN, t, counter == 1 ? 0 : HASH_LEN,
                        info, info_len, &counter, 1, t, error))
        goto out;
      take = MIN (HASH_LEN, out_len - done);
      memcpy (out + done, t, take);
      done += take;
    }
  ok = TRUE;

out:
  e2ee_wipe (prk, sizeof prk);
  e2ee_wipe (t, sizeof t);
  if (!ok)
    e2ee_wipe (out, out_len);
  return ok;
}

char *
e2ee_kdf_account_id (const char *protocol, const char *name)
{
  return g_strconcat (protocol, ":", name, NULL);
}

gboolean
e2ee_kdf_account_valid (const char *account, GError **error)
{
  const char *colon = account ? strchr (account, ':') : NULL;
  gsize len = account ? strlen (account) : 0;
  gboolean ok = colon != NULL && colon > account && colon[1] != '\0'
                && len <= E2EE_KDF_ACCOUNT_MAX && g_utf8_validate (account, (gssize) len, NULL);

  for (gsize i = 0; ok && i < len; i++)
    ok = (guchar) account[i] >= 0x20 && account[i] != 0x7f;
  if (!ok)
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_KDF_PARAM,
                 "an account identifier must be \"<protocol>:<name>\", at most %d bytes "
                 "of UTF-8 without control characters", E2EE_KDF_ACCOUNT_MAX);
  return ok;
}

#define INFO_MAX (sizeof KDF_INFO_LABEL - 1 + 1 + 2 * E2EE_THUMBPRINT_LEN \
                  + 2 * (2 + E2EE_KDF_ACCOUNT_MAX))

static gsize
put_account (guint8 *info, gsize n, const char *account)
{
  gsize len = strlen (account);

  info[n++] = (guint8) (len >> 8);
  info[n++] = (guint8) len;
  memcpy (info + n, account, len);
  return n + len;
}

/* info = label || caps || thumbprint(sender) || thumbprint(recipient)
 *        || u16be(len) || sender account || u16be(len) || recipient account */
static gsize
build_info (guint8 *info, guint8 caps, const E2eeKey *sender, const char *sender_account,
            const E2eeKey *recipient, const char *recipient_account)
{
  gsize n = strlen (KDF_INFO_LABEL);

  memcpy (info, KDF_INFO_LABEL, n);
  info[n++] = caps;
  memcpy (info + n, e2ee_key_get_thumbprint (sender), E2EE_THUMBPRINT_LEN);
  n += E2EE_THUMBPRINT_LEN;
  memcpy (info + n, e2ee_key_get_thumbprint (recipient), E2EE_THUMBPRINT_LEN);
  n += E2EE_THUMBPRINT_LEN;
  n = put_account (info, n, sender_account);
  return put_account (info, n, recipient_account);
}

static gboolean
expand_direction (const guint8 shared[E2EE_KEY_COORD_LEN], guint8 caps,
                  const E2eeKey *sender, const char *sender_account,
                  const E2eeKey *recipient, const char *recipient_account,
                  guint8 out[E2EE_KEY_LEN], GError **error)
{
  guint8 info[INFO_MAX];
  gsize info_len = build_info (info, caps, sender, sender_account,
                               recipient, recipient_account);

  return e2ee_hkdf_sha256 ((const guint8 *) KDF_SALT, strlen (KDF_SALT),
                           shared, E2EE_KEY_COORD_LEN, info, info_len,
                           out, E2EE_KEY_LEN, error);
}

gboolean
e2ee_kdf_direction_key (const E2eeKey *sender, const char *sender_account,
                        const E2eeKey *recipient, const char *recipient_account,
                        guint8 caps, guint8 out[E2EE_KEY_LEN], GError **error)
{
  guint8 shared[E2EE_KEY_COORD_LEN];
  const E2eeKey *local = e2ee_key_has_private (sender) ? sender : recipient;
  const E2eeKey *remote = local == sender ? recipient : sender;
  gboolean ok;

  if (!e2ee_kdf_account_valid (sender_account, error)
      || !e2ee_kdf_account_valid (recipient_account, error))
    {
      e2ee_wipe (out, E2EE_KEY_LEN);
      return FALSE;
    }
  ok = e2ee_key_ecdh (local, remote, shared, error)
       && expand_direction (shared, caps, sender, sender_account, recipient,
                            recipient_account, out, error);
  e2ee_wipe (shared, sizeof shared);
  if (!ok)
    e2ee_wipe (out, E2EE_KEY_LEN);
  return ok;
}

gboolean
e2ee_kdf_pair_keys (const E2eeKey *local, const char *local_account,
                    const E2eeKey *remote, const char *remote_account,
                    guint8 local_caps, guint8 remote_caps,
                    guint8 out_send[E2EE_KEY_LEN], guint8 out_recv[E2EE_KEY_LEN],
                    GError **error)
{
  guint8 shared[E2EE_KEY_COORD_LEN];
  gboolean ok;

  ok = e2ee_kdf_account_valid (local_account, error)
       && e2ee_kdf_account_valid (remote_account, error)
       && e2ee_key_ecdh (local, remote, shared, error)
       && expand_direction (shared, local_caps, local, local_account, remote,
                            remote_account, out_send, error)
       && expand_direction (shared, remote_caps, remote, remote_account, local,
                            local_account, out_recv, error);
  e2ee_wipe (shared, sizeof shared);
  if (!ok)
    {
      e2ee_wipe (out_send, E2EE_KEY_LEN);
      e2ee_wipe (out_recv, E2EE_KEY_LEN);
    }
  return ok;
}
