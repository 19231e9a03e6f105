/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-json.h"
#include "e2ee-sign.h"
#include "e2ee-wipe.h"

struct _E2eeSignKey {
  E2eeEcSecret *secret;
};

/* n of P-256, big-endian. */
static const guint8 p256_n[32] = {
  0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
  0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

static E2eeSignKey *
wrap (E2eeEcSecret *secret)
{
  E2eeSignKey *key;

  if (secret == NULL)
    return NULL;
  key = g_new0 (E2eeSignKey, 1);
  key->secret = secret;
  return key;
}

E2eeSignKey *
e2ee_sign_key_generate (GError **error)
{
  return wrap (e2ee_ec_secret_generate_long_term (error));
}

E2eeSignKey *
e2ee_sign_key_from_bytes (const guint8 d[E2EE_KEY_COORD_LEN], GError **error)
{
  return wrap (e2ee_ec_secret_from_bytes (d, error));
}

gboolean
e2ee_sign_key_to_bytes (const E2eeSignKey *key, guint8 d[E2EE_KEY_COORD_LEN])
{
  return e2ee_ec_secret_to_bytes (key->secret, d);
}

void
e2ee_sign_key_free (E2eeSignKey *key)
{
  if (key == NULL)
    return;
  e2ee_ec_secret_free (key->secret);
  g_free (key);
}

E2eeKey *
e2ee_sign_key_get_public (const E2eeSignKey *key)
{
  return e2ee_ec_secret_get_public (key->secret);
}

char *
e2ee_sign_public_to_jwk (const E2eeKey *pub)
{
  g_autofree char *x = e2ee_b64url_encode (e2ee_key_get_x (pub), E2EE_KEY_COORD_LEN);
  g_autofree char *y = e2ee_b64url_encode (e2ee_key_get_y (pub), E2EE_KEY_COORD_LEN);

  return g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                          "\"alg\":\"ES256\",\"use\":\"sig\"}", x, y);
}

static gboolean
optional_string_is (JsonObject *obj, const char *name, const char *want, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
      && strcmp (json_node_get_string (node), want) == 0)
    return TRUE;
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_SIGN_KEY,
               "signing key member \"%s\" must be \"%s\"", name, want);
  return FALSE;
}

E2eeKey *
e2ee_sign_public_from_jwk (const char *json, gssize len, GError **error)
{
  JsonNode *root;
  JsonObject *obj;
  E2eeKey *key = NULL;

  root = e2ee_json_parse_strict (json, len, 2, E2EE_ERROR_JWK_SYNTAX, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SYNTAX,
                           "a JWK must be a JSON object");
      goto out;
    }
  obj = json_node_get_object (root);
  key = e2ee_key_from_jwk_object (obj, E2EE_KEY_EXPECT_PUBLIC, error);
  if (key != NULL && (!optional_string_is (obj, "alg", "ES256", error)
                      || !optional_string_is (obj, "use", "sig", error)))
    g_clear_pointer (&key, e2ee_key_unref);
out:
  json_node_unref (root);
  return key;
}

static gboolean
bad_signature (GError **error, const char *why)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_SIGNATURE, "signature rejected: %s", why);
  return FALSE;
}

static gboolean
public_sexp (const E2eeKey *pub, gcry_sexp_t *out, GError **error)
{
  guint8 q[E2EE_EC_POINT_LEN];
  gcry_error_t err;

  e2ee_ec_point_encode (pub, q);
  err = gcry_sexp_build (out, NULL, "(public-key (ecc (curve \"NIST P-256\") (q %b)))",
                         (int) sizeof q, q);
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "cannot build the public key: %s", gcry_strerror (err));
      return FALSE;
    }
  return TRUE;
}

gboolean
e2ee_sign (const E2eeSignKey *key, const guint8 *msg, gsize len,
           guint8 sig[E2EE_SIGNATURE_LEN], GError **error)
{
  guint8 hash[32], q[E2EE_EC_POINT_LEN];
  gcry_sexp_t skey = NULL, data = NULL, result = NULL;
  gcry_mpi_t r = NULL, s = NULL;
  gcry_error_t err;
  gboolean ok = FALSE;
  size_t n;

  if (!e2ee_gcrypt_init (error))
    return FALSE;
  gcry_md_hash_buffer (GCRY_MD_SHA256, hash, msg, len);
  e2ee_ec_point_encode (e2ee_sign_key_get_public (key), q);
  /* A secure MPI makes libgcrypt keep the S-expression in secure memory. */
  {
    gcry_mpi_t d = e2ee_ec_secret_dup_scalar (key->secret);

    if (d == NULL)
      {
        g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                             "cannot hold the signing key in secure memory");
        return FALSE;
      }
    err = gcry_sexp_build (&skey, NULL,
                           "(private-key (ecc (curve \"NIST P-256\") (q %b) (d %m)))",
                           (int) sizeof q, q, d);
    gcry_mpi_release (d);
  }
  if (!err)
    err = gcry_sexp_build (&data, NULL, "(data (flags rfc6979) (hash sha256 %b))",
                           (int) sizeof hash, hash);
  if (!err)
    err = gcry_pk_sign (&result, data, skey);
  if (!err)
    {
      err = gcry_sexp_extract_param (result, "ecdsa", "rs", &r, &s, NULL);
    }
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "ECDSA signing failed: %s", gcry_strerror (err));
      goto out;
    }
  memset (sig, 0, E2EE_SIGNATURE_LEN);
  if (gcry_mpi_print (GCRYMPI_FMT_USG, NULL, 0, &n, r) || n > 32
      || gcry_mpi_print (GCRYMPI_FMT_USG, sig + 32 - n, n, NULL, r)
      || gcry_mpi_print (GCRYMPI_FMT_USG, NULL, 0, &n, s) || n > 32
      || gcry_mpi_print (GCRYMPI_FMT_USG, sig + 64 - n, n, NULL, s))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                           "ECDSA signature has an unexpected size");
      goto out;
    }
  ok = TRUE;
out:
  gcry_mpi_release (r);
  gcry_mpi_release (s);
  gcry_sexp_release (skey);
  gcry_sexp_release (data);
  gcry_sexp_release (result);
  if (!ok)
    e2ee_wipe (sig, E2EE_SIGNATURE_LEN);
  return ok;
}

/* TRUE if the 32-byte big-endian value is in [1, n-1]. */
static gboolean
scalar_ok (const guint8 v[32])
{
  guint8 any = 0;

  for (int i = 0; i < 32; i++)
    any |= v[i];
  if (any == 0)
    return FALSE;
  return memcmp (v, p256_n, 32) < 0;
}

gboolean
e2ee_sign_verify (const E2eeKey *pub, const guint8 *msg, gsize len,
                  const guint8 *sig, gsize sig_len, GError **error)
{
  guint8 hash[32];
  gcry_sexp_t pkey = NULL, data = NULL, sval = NULL;
  gcry_error_t err;
  gboolean ok = FALSE;

  if (sig_len != E2EE_SIGNATURE_LEN)
    return bad_signature (error, "not 64 bytes (r || s)");
  if (!scalar_ok (sig) || !scalar_ok (sig + 32))
    return bad_signature (error, "r or s is not in [1, n-1]");
  if (!e2ee_gcrypt_init (error) || !public_sexp (pub, &pkey, error))
    return FALSE;
  gcry_md_hash_buffer (GCRY_MD_SHA256, hash, msg, len);
  err = gcry_sexp_build (&data, NULL, "(data (flags raw) (value %b))", 32, hash);
  if (!err)
    err = gcry_sexp_build (&sval, NULL, "(sig-val (ecdsa (r %b) (s %b)))",
                           32, sig, 32, sig + 32);
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "cannot build the verification input: %s", gcry_strerror (err));
      goto out;
    }
  err = gcry_pk_verify (sval, data, pkey);
  if (err)
    bad_signature (error, "does not verify");
  else
    ok = TRUE;
out:
  gcry_sexp_release (pkey);
  gcry_sexp_release (data);
  gcry_sexp_release (sval);
  return ok;
}
