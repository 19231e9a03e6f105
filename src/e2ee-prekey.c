/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-prekey.h"
#include "e2ee-wipe.h"

#define LABEL_LEN (sizeof E2EE_PREKEY_LABEL - 1)

G_STATIC_ASSERT (LABEL_LEN == 14);

static void
put32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static guint32
get32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

void
e2ee_prekey_free (E2eePrekey *prekey)
{
  if (prekey == NULL)
    return;
  e2ee_key_unref (prekey->spk);
  g_free (prekey);
}

/* The statement; returns its length (at most E2EE_PREKEY_RECORD_MAX - 64). */
static gsize
build_statement (guint8 *out, const E2eeKey *identity, guint32 device, guint32 id,
                 const E2eeKey *spk, guint64 expires, guint8 versions)
{
  gsize n = 0;
  guint8 count = 0;

  memcpy (out, E2EE_PREKEY_LABEL, LABEL_LEN);
  n = LABEL_LEN;
  out[n++] = E2EE_PREKEY_FORMAT;
  memcpy (out + n, e2ee_key_get_thumbprint (identity), E2EE_THUMBPRINT_LEN);
  n += E2EE_THUMBPRINT_LEN;
  put32 (out + n, device);
  put32 (out + n + 4, id);
  n += 8;
  e2ee_ec_point_encode (spk, out + n);
  n += E2EE_EC_POINT_LEN;
  put32 (out + n, (guint32) (expires >> 32));
  put32 (out + n + 4, (guint32) expires);
  n += 8;
  for (guint v = 1; v <= E2EE_PREKEY_MAX_VERSIONS; v++)
    if (versions & (1u << (v - 1)))
      count++;
  out[n++] = count;
  for (guint v = 1; v <= E2EE_PREKEY_MAX_VERSIONS; v++)
    if (versions & (1u << (v - 1)))
      out[n++] = (guint8) v;
  return n;
}

gboolean
e2ee_prekey_create (const E2eeSignKey *sign_key, const E2eeKey *identity,
                    guint32 device, guint32 id, guint64 created, guint8 versions,
                    E2eeEcSecret **secret_out, GBytes **record_out, GError **error)
{
  guint8 buf[E2EE_PREKEY_RECORD_MAX];
  E2eeEcSecret *secret;
  gsize n;

  g_return_val_if_fail (secret_out != NULL && record_out != NULL, FALSE);
  if (!(versions & E2EE_V2_VERSIONS))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_PREKEY_VERSION,
                           "a prekey must advertise protocol version 2");
      return FALSE;
    }
  if (created > G_MAXUINT64 - E2EE_PREKEY_KEEP)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_PREKEY_EXPIRED,
                           "creation time out of range");
      return FALSE;
    }
  if (!(secret = e2ee_ec_secret_generate (error)))
    return FALSE;
  n = build_statement (buf, identity, device, id, e2ee_ec_secret_get_public (secret),
                       created + E2EE_PREKEY_LIFETIME, versions);
  if (!e2ee_sign (sign_key, buf, n, buf + n, error))
    {
      e2ee_ec_secret_free (secret);
      return FALSE;
    }
  *secret_out = secret;
  *record_out = g_bytes_new (buf, n + E2EE_SIGNATURE_LEN);
  return TRUE;
}

static E2eePrekey *
format_error (GError **error, E2eeErrorCode code, const char *why)
{
  g_set_error (error, E2EE_ERROR, code, "prekey record rejected: %s", why);
  return NULL;
}

E2eePrekey *
e2ee_prekey_verify (const guint8 *rec, gsize len, const E2eeKey *sign_pub,
                    const E2eeKey *identity, guint32 device, guint64 now,
                    GError **error)
{
  g_autoptr (E2eePrekey) pk = NULL;
  g_autoptr (GError) local = NULL;
  const gsize fixed = E2EE_PREKEY_STATEMENT_MIN - 1; /* up to and with nver */
  const guint8 *p;
  gsize stmt_len;
  guint8 nver;

  if (len < E2EE_PREKEY_STATEMENT_MIN + E2EE_SIGNATURE_LEN || len > E2EE_PREKEY_RECORD_MAX)
    return format_error (error, E2EE_ERROR_PREKEY_FORMAT, "wrong length");
  if (memcmp (rec, E2EE_PREKEY_LABEL, LABEL_LEN) != 0)
    return format_error (error, E2EE_ERROR_PREKEY_FORMAT, "wrong label");
  if (rec[LABEL_LEN] != E2EE_PREKEY_FORMAT)
    return format_error (error, E2EE_ERROR_PREKEY_FORMAT, "unknown record format");
  nver = rec[fixed - 1];
  if (nver == 0 || nver > E2EE_PREKEY_MAX_VERSIONS)
    return format_error (error, E2EE_ERROR_PREKEY_VERSION, "version count not in 1..8");
  stmt_len = fixed + nver;
  if (len != stmt_len + E2EE_SIGNATURE_LEN)
    return format_error (error, E2EE_ERROR_PREKEY_FORMAT, "length does not match the version count");

  pk = g_new0 (E2eePrekey, 1);
  for (guint i = 0; i < nver; i++)
    {
      guint8 v = rec[fixed + i];
      if (v < 1 || v > E2EE_PREKEY_MAX_VERSIONS || (i > 0 && v <= rec[fixed + i - 1]))
        return format_error (error, E2EE_ERROR_PREKEY_VERSION,
                             "versions must be strictly increasing, in 1..8");
      pk->versions |= (guint8) (1u << (v - 1));
    }
  if (!(pk->versions & E2EE_V2_VERSIONS))
    return format_error (error, E2EE_ERROR_PREKEY_VERSION, "version 2 is not listed");

  p = rec + LABEL_LEN + 1;
  memcpy (pk->identity_tp, p, E2EE_THUMBPRINT_LEN);
  p += E2EE_THUMBPRINT_LEN;
  pk->device = get32 (p);
  pk->id = get32 (p + 4);
  p += 8;
  if (!(pk->spk = e2ee_ec_point_decode (p, &local)))
    return format_error (error, E2EE_ERROR_PREKEY_FORMAT, "the prekey is not a valid P-256 point");
  p += E2EE_EC_POINT_LEN;
  pk->expires = (guint64) get32 (p) << 32 | get32 (p + 4);

  if (!e2ee_sign_verify (sign_pub, rec, stmt_len, rec + stmt_len, E2EE_SIGNATURE_LEN, error))
    return NULL;
  if (!e2ee_ct_equal (pk->identity_tp, e2ee_key_get_thumbprint (identity), E2EE_THUMBPRINT_LEN)
      || pk->device != device)
    return format_error (error, E2EE_ERROR_PREKEY_IDENTITY,
                         "signed for another identity key or device");
  if (now >= pk->expires)
    return format_error (error, E2EE_ERROR_PREKEY_EXPIRED, "expired");
  if (pk->expires - now > (guint64) E2EE_PREKEY_LIFETIME + E2EE_PREKEY_SKEW)
    return format_error (error, E2EE_ERROR_PREKEY_EXPIRED,
                         "expiry lies further ahead than a prekey may live");
  return g_steal_pointer (&pk);
}

gboolean
e2ee_prekey_rotation_due (guint64 created, guint64 now)
{
  if (now + E2EE_PREKEY_SKEW < created)
    return TRUE; /* the clock went back: the old expiry cannot be trusted */
  return now >= created && now - created >= E2EE_PREKEY_PERIOD;
}

gboolean
e2ee_prekey_delete_due (guint64 created, guint64 now)
{
  return now >= created && now - created >= E2EE_PREKEY_KEEP;
}
