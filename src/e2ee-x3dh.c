/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-kdf.h"
#include "e2ee-wipe.h"
#include "e2ee-x3dh.h"

#define LABEL_LEN (sizeof E2EE_X3DH_LABEL - 1)
#define INFO_MAX (LABEL_LEN + 1 + 2 * E2EE_THUMBPRINT_LEN + 3 * 4 + 2 \
                  + 2 * (2 + E2EE_X3DH_ACCOUNT_MAX))

void
e2ee_x3dh_result_clear (E2eeX3dhResult *result)
{
  e2ee_wipe (result, sizeof *result);
}

static gboolean
check_account (const char *account, GError **error)
{
  gsize n = account ? strlen (account) : 0;

  if (n == 0 || n > E2EE_X3DH_ACCOUNT_MAX || !g_utf8_validate (account, n, NULL))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_ACCOUNT,
                   "an account identifier must be 1 to %d bytes of UTF-8",
                   E2EE_X3DH_ACCOUNT_MAX);
      return FALSE;
    }
  return TRUE;
}

static void
put32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static gsize
put_account (guint8 *p, const char *account)
{
  gsize n = strlen (account);

  p[0] = (guint8) (n >> 8);
  p[1] = (guint8) n;
  memcpy (p + 2, account, n);
  return 2 + n;
}

/* info = label | mode | tp(IK_I) | tp(IK_R) | dev_I | dev_R | spk_id |
 *        ver_I | ver_R | len16 acct_I | acct_I | len16 acct_R | acct_R */
static gsize
build_info (guint8 *info, guint8 mode, guint32 spk_id,
            const E2eeX3dhParty *init, const E2eeX3dhParty *resp)
{
  gsize n = LABEL_LEN;

  memcpy (info, E2EE_X3DH_LABEL, LABEL_LEN);
  info[n++] = mode;
  memcpy (info + n, e2ee_key_get_thumbprint (init->identity), E2EE_THUMBPRINT_LEN);
  n += E2EE_THUMBPRINT_LEN;
  memcpy (info + n, e2ee_key_get_thumbprint (resp->identity), E2EE_THUMBPRINT_LEN);
  n += E2EE_THUMBPRINT_LEN;
  put32 (info + n, init->device);
  put32 (info + n + 4, resp->device);
  put32 (info + n + 8, spk_id);
  n += 12;
  info[n++] = init->versions;
  info[n++] = resp->versions;
  n += put_account (info + n, init->account);
  n += put_account (info + n, resp->account);
  return n;
}

static gboolean
finish (guint8 mode, guint32 spk_id, const E2eeX3dhParty *init,
        const E2eeX3dhParty *resp, const guint8 *ikm, gsize ikm_len,
        E2eeX3dhResult *out, GError **error)
{
  guint8 info[INFO_MAX];
  guint8 okm[64];
  gsize n = build_info (info, mode, spk_id, init, resp);
  gboolean ok;

  ok = e2ee_hkdf_sha256 (NULL, 0, ikm, ikm_len, info, n, okm, sizeof okm, error);
  if (ok)
    {
      out->mode = mode;
      out->spk_id = spk_id;
      memcpy (out->root, okm, 32);
      memcpy (out->chain, okm + 32, 32);
      gcry_md_hash_buffer (GCRY_MD_SHA256, out->sid, info, n);
    }
  e2ee_wipe (okm, sizeof okm);
  return ok;
}

static gboolean
check_parties (const E2eeX3dhParty *self, const E2eeX3dhParty *peer, GError **error)
{
  if (!check_account (self->account, error) || !check_account (peer->account, error))
    return FALSE;
  if (!e2ee_key_has_private (self->identity))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                           "session start needs our private identity key");
      return FALSE;
    }
  if (!(self->versions & 0x02) || !(peer->versions & 0x02))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_START,
                           "both sides must advertise protocol version 2");
      return FALSE;
    }
  return TRUE;
}

gboolean
e2ee_x3dh_initiate (const E2eeX3dhParty *self, const E2eeX3dhParty *peer,
                    const E2eePrekey *prekey, E2eeEcSecret **ephemeral_out,
                    E2eeX3dhResult *out, GError **error)
{
  guint8 ikm[3 * 32];
  E2eeEcSecret *ek = NULL;
  gboolean ok = FALSE;
  guint8 mode = prekey ? E2EE_X3DH_MODE_PREKEY : E2EE_X3DH_MODE_NO_PREKEY;

  memset (out, 0, sizeof *out);
  if (!check_parties (self, peer, error))
    return FALSE;
  if (prekey && (!e2ee_ct_equal (prekey->identity_tp, e2ee_key_get_thumbprint (peer->identity),
                                 E2EE_THUMBPRINT_LEN) || prekey->device != peer->device))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_PREKEY_IDENTITY,
                           "the prekey belongs to another identity or device");
      return FALSE;
    }
  if (!(ek = e2ee_ec_secret_generate (error)))
    return FALSE;
  if (prekey)
    ok = e2ee_key_ecdh (self->identity, prekey->spk, ikm, error)
         && e2ee_ec_secret_ecdh (ek, peer->identity, ikm + 32, error)
         && e2ee_ec_secret_ecdh (ek, prekey->spk, ikm + 64, error)
         && finish (mode, prekey->id, self, peer, ikm, 96, out, error);
  else
    ok = e2ee_key_ecdh (self->identity, peer->identity, ikm, error)
         && e2ee_ec_secret_ecdh (ek, peer->identity, ikm + 32, error)
         && finish (mode, 0, self, peer, ikm, 64, out, error);
  e2ee_wipe (ikm, sizeof ikm);
  if (!ok)
    {
      e2ee_ec_secret_free (ek);
      e2ee_x3dh_result_clear (out);
      return FALSE;
    }
  *ephemeral_out = ek;
  return TRUE;
}

gboolean
e2ee_x3dh_respond (const E2eeX3dhParty *self, const E2eeX3dhParty *peer,
                   E2eeX3dhMode mode, const E2eeEcSecret *spk, guint32 spk_id,
                   const E2eeKey *ephemeral, E2eeX3dhResult *out, GError **error)
{
  guint8 ikm[3 * 32];
  gboolean ok = FALSE;

  memset (out, 0, sizeof *out);
  if (!check_parties (self, peer, error))
    return FALSE;
  if ((mode == E2EE_X3DH_MODE_PREKEY && spk == NULL)
      || (mode == E2EE_X3DH_MODE_NO_PREKEY && (spk != NULL || spk_id != 0))
      || (mode != E2EE_X3DH_MODE_PREKEY && mode != E2EE_X3DH_MODE_NO_PREKEY))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_START,
                           "session start names no prekey we hold");
      return FALSE;
    }
  if (mode == E2EE_X3DH_MODE_PREKEY)
    ok = e2ee_ec_secret_ecdh (spk, peer->identity, ikm, error)
         && e2ee_key_ecdh (self->identity, ephemeral, ikm + 32, error)
         && e2ee_ec_secret_ecdh (spk, ephemeral, ikm + 64, error)
         && finish (mode, spk_id, peer, self, ikm, 96, out, error);
  else
    ok = e2ee_key_ecdh (self->identity, peer->identity, ikm, error)
         && e2ee_key_ecdh (self->identity, ephemeral, ikm + 32, error)
         && finish (mode, 0, peer, self, ikm, 64, out, error);
  e2ee_wipe (ikm, sizeof ikm);
  if (!ok)
    e2ee_x3dh_result_clear (out);
  return ok;
}

void
e2ee_x3dh_replay_tag (E2eeX3dhMode mode, guint32 spk_id, const E2eeKey *ephemeral,
                      guint8 out[32])
{
  static const char label[] = "PE2E v2 replay";
  guint8 buf[sizeof label - 1 + 1 + 4 + E2EE_EC_POINT_LEN];
  gsize n = sizeof label - 1;

  memcpy (buf, label, n);
  buf[n++] = (guint8) mode;
  put32 (buf + n, spk_id);
  n += 4;
  e2ee_ec_point_encode (ephemeral, buf + n);
  n += E2EE_EC_POINT_LEN;
  gcry_md_hash_buffer (GCRY_MD_SHA256, out, buf, n);
}

gboolean
e2ee_x3dh_crossed_keep_ours (const guint8 ours[32], const guint8 theirs[32])
{
  return memcmp (ours, theirs, 32) < 0;
}
