/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The JWK text form of a key (RFC 7517/7518, with the "e2ee_v" and v2
 * members of docs/PROTOCOL.md): parsing with every check, and output
 * that keeps "d" in buffers that are wiped. */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-json.h"
#include "e2ee-jwk-private.h"
#include "e2ee-keyset.h"
#include "e2ee-wipe.h"

/* ---- JWK parsing ------------------------------------------------------ */

static const char *
get_string_member (JsonObject *obj, const char *name, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_MISSING,
                   "JWK member \"%s\" is missing", name);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_SYNTAX,
                   "JWK member \"%s\" is not a string", name);
      return NULL;
    }
  return json_node_get_string (node);
}

/* Decodes a base64url member into exactly 32 bytes at @out.  @secret
 * buffers are wiped on every path. */
static gboolean
decode_coord_text (const char *text, const char *name, guint8 out[E2EE_KEY_COORD_LEN],
                   GError **error)
{
  guint8 *raw;
  gsize len = 0;

  raw = e2ee_b64url_decode (text, strlen (text), &len, NULL);
  if (raw == NULL)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_BASE64,
                   "JWK member \"%s\" is not unpadded base64url", name);
      return FALSE;
    }
  if (len != E2EE_KEY_COORD_LEN)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_LENGTH,
                   "JWK member \"%s\" holds %" G_GSIZE_FORMAT " bytes, not 32", name, len);
      e2ee_secret_free (raw, len + 1);
      return FALSE;
    }
  memcpy (out, raw, E2EE_KEY_COORD_LEN);
  e2ee_secret_free (raw, len + 1);
  return TRUE;
}

static gboolean
decode_coord (JsonObject *obj, const char *name, guint8 out[E2EE_KEY_COORD_LEN],
              GError **error)
{
  const char *text = get_string_member (obj, name, error);

  return text != NULL && decode_coord_text (text, name, out, error);
}

/* "e2ee_v": [1, ...] lists the protocol versions the device speaks. */
static gboolean
parse_caps (JsonObject *obj, guint8 *caps, GError **error)
{
  JsonNode *node = json_object_get_member (obj, "e2ee_v");
  JsonArray *arr;
  guint8 bits = 0;

  if (node == NULL)
    {
      *caps = E2EE_CAPS_V1;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    goto bad;
  arr = json_node_get_array (node);
  if (json_array_get_length (arr) == 0 || json_array_get_length (arr) > 16)
    goto bad;
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *v = json_array_get_element (arr, i);
      gint64 n;
      if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_INT64)
        goto bad;
      n = json_node_get_int (v);
      if (n < 1 || n > 64)
        goto bad;
      /* Versions above 4 are a later peer's business: v1 envelopes carry
       * four capability bits, so they are ignored rather than refused. */
      if (n <= 4)
        bits |= (guint8) (1u << (n - 1));
    }
  if (!(bits & E2EE_CAPS_V1))
    goto bad;
  *caps = bits;
  return TRUE;

bad:
  g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SYNTAX,
                       "JWK member \"e2ee_v\" must list protocol versions including 1");
  return FALSE;
}

/* @d_text: the value of "d" when the caller kept it out of @obj (whose
 * "d" then holds a placeholder); NULL to read it from @obj. */
static E2eeKey *
key_from_object (JsonObject *obj, E2eeKeyExpect expect, const char *d_text, GError **error)
{
  const char *kty, *crv;
  guint8 x[E2EE_KEY_COORD_LEN], y[E2EE_KEY_COORD_LEN];
  guint8 *d_bytes = NULL;
  gcry_mpi_t d = NULL;
  gboolean has_d;
  guint8 caps = E2EE_CAPS_V1;
  E2eeKey *key = NULL;

  g_return_val_if_fail (obj != NULL, NULL);
  if (!e2ee_gcrypt_init (error))
    return NULL;
  if (!(kty = get_string_member (obj, "kty", error)))
    return NULL;
  if (strcmp (kty, "EC") != 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_KTY,
                   "JWK key type must be \"EC\", not \"%.16s\"", kty);
      return NULL;
    }
  if (!(crv = get_string_member (obj, "crv", error)))
    return NULL;
  if (strcmp (crv, "P-256") != 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_CRV,
                   "JWK curve must be \"P-256\", not \"%.16s\"", crv);
      return NULL;
    }
  if (!decode_coord (obj, "x", x, error) || !decode_coord (obj, "y", y, error))
    return NULL;
  has_d = json_object_has_member (obj, "d");
  if (has_d && expect == E2EE_KEY_EXPECT_PUBLIC)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_UNEXPECTED_PRIVATE,
                           "a private key (\"d\") was given where a public key is expected");
      return NULL;
    }
  if (!has_d && expect == E2EE_KEY_EXPECT_PRIVATE)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_MISSING,
                           "JWK member \"d\" is missing");
      return NULL;
    }
  if (!parse_caps (obj, &caps, error) || !e2ee_key_validate_point (x, y, error))
    return NULL;

  if (has_d)
    {
      guint8 qx[E2EE_KEY_COORD_LEN], qy[E2EE_KEY_COORD_LEN];

      d_bytes = gcry_malloc_secure (E2EE_KEY_COORD_LEN);
      if (d_bytes == NULL)
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                               "libgcrypt secure memory is unavailable");
          goto out;
        }
      if (d_text != NULL ? !(get_string_member (obj, "d", error)
                             && decode_coord_text (d_text, "d", d_bytes, error))
                         : !decode_coord (obj, "d", d_bytes, error))
        goto out;
      d = e2ee_key_secure_scalar (d_bytes);
      if (d == NULL)
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                               "libgcrypt secure memory is unavailable");
          goto out;
        }
      if (!e2ee_key_scalar_in_range (d, error)
          || !e2ee_key_public_from_scalar (d, qx, qy, error))
        goto out;
      if (!e2ee_ct_equal (qx, x, sizeof qx) || !e2ee_ct_equal (qy, y, sizeof qy))
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_KEY_MISMATCH,
                               "the private scalar does not match the public point");
          goto out;
        }
    }

  key = e2ee_key_alloc (x, y, caps);
  key->d = d;
  d = NULL;

  if (json_object_has_member (obj, "kid"))
    {
      const char *kid = get_string_member (obj, "kid", error);
      if (kid == NULL || strcmp (kid, key->kid) != 0)
        {
          if (kid != NULL)
            g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                                 "JWK \"kid\" is not the key's thumbprint");
          e2ee_key_unref (key);
          key = NULL;
        }
    }
  if (key != NULL
      && !e2ee_keyset_v2_members_parse (obj, key, &key->sign_pub, &key->prekey_record, error))
    g_clear_pointer (&key, e2ee_key_unref);

out:
  if (d_bytes)
    {
      e2ee_wipe (d_bytes, E2EE_KEY_COORD_LEN);
      gcry_free (d_bytes);
    }
  gcry_mpi_release (d);
  return key;
}

E2eeKey *
e2ee_key_from_jwk_object (JsonObject *obj, E2eeKeyExpect expect, GError **error)
{
  return key_from_object (obj, expect, NULL, error);
}

E2eeKey *
e2ee_key_from_jwk (const char *json, gssize len, E2eeKeyExpect expect, GError **error)
{
  JsonNode *root;
  E2eeKey *key = NULL;
  char *d_text = NULL;

  g_return_val_if_fail (json != NULL, NULL);
  /* "d" never enters json-glib (e2ee-json.h). */
  root = e2ee_json_parse_strict_secret (json, len, 2, E2EE_ERROR_JWK_SYNTAX, "d", &d_text,
                                        error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SYNTAX,
                         "a JWK must be a JSON object");
  else
    key = key_from_object (json_node_get_object (root), expect, d_text, error);
  e2ee_string_free (d_text);
  json_node_unref (root);
  return key;
}

/* ---- JWK output ------------------------------------------------------- */

static void
set_b64 (JsonObject *obj, const char *name, const guint8 *data, gsize len)
{
  char *text = e2ee_b64url_encode (data, len);
  json_object_set_string_member (obj, name, text);
  e2ee_string_free (text);
}

JsonObject *
e2ee_key_to_jwk_object (const E2eeKey *key, gboolean with_private, gboolean with_meta)
{
  JsonObject *obj = json_object_new ();

  g_return_val_if_fail (key != NULL, obj);
  json_object_set_string_member (obj, "kty", "EC");
  json_object_set_string_member (obj, "crv", "P-256");
  set_b64 (obj, "x", key->x, E2EE_KEY_COORD_LEN);
  set_b64 (obj, "y", key->y, E2EE_KEY_COORD_LEN);
  if (with_private && key->d)
    {
      guint8 d[E2EE_KEY_COORD_LEN];
      if (e2ee_key_mpi_to_coord (key->d, d))
        set_b64 (obj, "d", d, E2EE_KEY_COORD_LEN);
      e2ee_wipe (d, E2EE_KEY_COORD_LEN);
    }
  if (with_meta)
    {
      JsonArray *versions = json_array_new ();
      json_object_set_string_member (obj, "kid", key->kid);
      for (guint v = 1; v <= 8; v++)
        if (key->caps & (1u << (v - 1)))
          json_array_add_int_element (versions, v);
      json_object_set_array_member (obj, "e2ee_v", versions);
      e2ee_keyset_v2_members_add (obj, key);
    }
  return obj;
}

/* Serialises without whitespace; the caller wipes the result if it may
 * hold a secret. */
static char *
object_to_string (JsonObject *obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  char *text;

  json_node_take_object (node, obj);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  json_node_unref (node);
  return text;
}

/* The text a JsonGenerator would write for e2ee_key_to_jwk_object (same
 * members, same order, no whitespace), written here so that "d" is only
 * ever in buffers we wipe. */
char *
e2ee_key_to_jwk (const E2eeKey *key, gboolean with_private, gboolean with_meta)
{
  GString *out;
  char *b64;
  char *text;

  if (!(with_private && key->d))
    return object_to_string (e2ee_key_to_jwk_object (key, FALSE, with_meta));
  out = g_string_sized_new (1024);
  g_string_append (out, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"");
  b64 = e2ee_b64url_encode (key->x, E2EE_KEY_COORD_LEN);
  g_string_append (out, b64);
  g_free (b64);
  g_string_append (out, "\",\"y\":\"");
  b64 = e2ee_b64url_encode (key->y, E2EE_KEY_COORD_LEN);
  g_string_append (out, b64);
  g_free (b64);
  {
    guint8 d[E2EE_KEY_COORD_LEN];
    if (e2ee_key_mpi_to_coord (key->d, d))
      {
        g_string_append (out, "\",\"d\":\"");
        b64 = e2ee_b64url_encode (d, E2EE_KEY_COORD_LEN);
        g_string_append (out, b64);
        e2ee_string_free (b64);
      }
    e2ee_wipe (d, sizeof d);
  }
  g_string_append_c (out, '"');
  if (with_meta)
    {
      gboolean first = TRUE;

      g_string_append_printf (out, ",\"kid\":\"%s\",\"e2ee_v\":[", key->kid);
      for (guint v = 1; v <= 8; v++)
        if (key->caps & (1u << (v - 1)))
          {
            g_string_append_printf (out, first ? "%u" : ",%u", v);
            first = FALSE;
          }
      g_string_append_c (out, ']');
      e2ee_keyset_v2_members_append (out, key);
    }
  g_string_append_c (out, '}');
  /* The buffer was sized for the whole key: it never grew, so no freed
   * block holds part of it. */
  g_assert (out->len < 1024);
  text = g_strndup (out->str, out->len);
  e2ee_gstring_free (out);
  return text;
}
