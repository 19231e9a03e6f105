/* purple-e2ee — the key set a device publishes: JWK Sets (RFC 7517 §5),
 * the compact binary form and the v2 attachments of each key.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-json.h"
#include "e2ee-keyset.h"
#include "e2ee-prekey.h"

#define LABEL_LEN (sizeof E2EE_PREKEY_LABEL - 1)
#define COMPACT_V1 0x01
#define COMPACT_V2 0x02

/* The published record bounds are the prekey module's. */
G_STATIC_ASSERT (E2EE_V2_RECORD_MIN == E2EE_PREKEY_STATEMENT_MIN + E2EE_SIGNATURE_LEN);
G_STATIC_ASSERT (E2EE_V2_RECORD_MAX == E2EE_PREKEY_RECORD_MAX);
G_STATIC_ASSERT (E2EE_V2_RECORD_MAX <= G_MAXUINT8);

GPtrArray *
e2ee_keyset_parse (const char *json, gssize len, GError **error)
{
  JsonNode *root;
  JsonNode *keys_node;
  JsonArray *arr;
  GPtrArray *keys = NULL;

  /* Depth 4: the set object, "keys", each JWK and its "e2ee_v" array. */
  root = e2ee_json_parse_strict (json, len, 4, E2EE_ERROR_JWK_SET, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root)
      || !(keys_node = json_object_get_member (json_node_get_object (root), "keys"))
      || !JSON_NODE_HOLDS_ARRAY (keys_node))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                           "a JWK Set must be an object with a \"keys\" array");
      goto out;
    }
  arr = json_node_get_array (keys_node);
  if (json_array_get_length (arr) == 0 || json_array_get_length (arr) > E2EE_KEYSET_MAX)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                   "a JWK Set must hold 1 to %d keys", E2EE_KEYSET_MAX);
      goto out;
    }
  keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *el = json_array_get_element (arr, i);
      E2eeKey *key;

      if (!JSON_NODE_HOLDS_OBJECT (el))
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                               "a JWK Set entry is not an object");
          goto fail;
        }
      if (!json_object_has_member (json_node_get_object (el), "kid"))
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                               "a JWK Set entry has no \"kid\"");
          goto fail;
        }
      key = e2ee_key_from_jwk_object (json_node_get_object (el), E2EE_KEY_EXPECT_PUBLIC, error);
      if (key == NULL)
        goto fail;
      for (guint j = 0; j < keys->len; j++)
        if (e2ee_key_equal (key, keys->pdata[j]))
          {
            e2ee_key_unref (key);
            g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_JWK_SET,
                                 "a JWK Set lists the same key twice");
            goto fail;
          }
      g_ptr_array_add (keys, key);
    }
  goto out;

fail:
  g_clear_pointer (&keys, g_ptr_array_unref);
out:
  json_node_unref (root);
  return keys;
}

char *
e2ee_keyset_to_json (GPtrArray *keys)
{
  JsonObject *set = json_object_new ();
  JsonArray *arr = json_array_new ();

  for (guint i = 0; i < keys->len; i++)
    json_array_add_object_element (arr, e2ee_key_to_jwk_object (keys->pdata[i], FALSE, TRUE));
  JsonNode *node;
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  char *text;

  json_object_set_array_member (set, "keys", arr);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, set);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  json_node_unref (node);
  return text;
}

/* ---- set rules ---------------------------------------------------------- */

gboolean
e2ee_keyset_check (GPtrArray *keys, GError **error)
{
  if (keys->len == 0 || keys->len > E2EE_KEYSET_MAX)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                   "a key set must hold 1 to %d keys, not %u", E2EE_KEYSET_MAX, keys->len);
      return FALSE;
    }
  for (guint i = 0; i < keys->len; i++)
    {
      if (!(e2ee_key_get_caps (keys->pdata[i]) & E2EE_CAPS_V1))
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                       "key %u does not support protocol version 1", i + 1);
          return FALSE;
        }
      for (guint j = 0; j < i; j++)
        if (e2ee_key_equal (keys->pdata[i], keys->pdata[j]))
          {
            g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                         "keys %u and %u are the same key", j + 1, i + 1);
            return FALSE;
          }
    }
  return TRUE;
}

gboolean
e2ee_keyset_usable (GPtrArray *keys)
{
  if (keys == NULL || keys->len == 0 || keys->len > E2EE_KEYSET_MAX)
    return FALSE;
  for (guint i = 0; i < keys->len; i++)
    if (!(e2ee_key_get_caps (keys->pdata[i]) & E2EE_CAPS_V1))
      return FALSE;
  return TRUE;
}

/* ---- v2 attachments ----------------------------------------------------- */

static gboolean
bundle_error (GError **error, GError *cause, const char *what)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE, "%s: %s", what, cause->message);
  g_error_free (cause);
  return FALSE;
}

gboolean
e2ee_keyset_v2_record_check (const guint8 *record, gsize len, GError **error)
{
  /* Only what makes the record a record: the signature, identity and
   * expiry need the pinned signing key and the time (e2ee_prekey_verify). */
  if (len < E2EE_V2_RECORD_MIN || len > E2EE_V2_RECORD_MAX)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   "prekey record of %" G_GSIZE_FORMAT " bytes, not %d to %d",
                   len, E2EE_V2_RECORD_MIN, E2EE_V2_RECORD_MAX);
      return FALSE;
    }
  if (memcmp (record, E2EE_PREKEY_LABEL, LABEL_LEN) != 0)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                           "prekey record does not start with \"" E2EE_PREKEY_LABEL "\"");
      return FALSE;
    }
  if (record[LABEL_LEN] != E2EE_PREKEY_FORMAT)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   "prekey record format %u, not %d", record[LABEL_LEN], E2EE_PREKEY_FORMAT);
      return FALSE;
    }
  return TRUE;
}

/* The signing key from X || Y: a validated point, never the identity key
 * itself (that key does ECDH only; signing with it is not allowed). */
static E2eeKey *
sign_pub_from_raw (const guint8 raw[E2EE_V2_SIGN_PUB_LEN], const E2eeKey *identity,
                   GError **error)
{
  guint8 point[E2EE_EC_POINT_LEN];
  GError *local = NULL;
  E2eeKey *pub;

  point[0] = 0x04;
  memcpy (point + 1, raw, E2EE_V2_SIGN_PUB_LEN);
  pub = e2ee_ec_point_decode (point, &local);
  if (pub == NULL)
    {
      bundle_error (error, local, "signing key");
      return NULL;
    }
  if (e2ee_key_equal (pub, identity))
    {
      e2ee_key_unref (pub);
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                           "the signing key is the identity key");
      return NULL;
    }
  return pub;
}

/* A string member of canonical unpadded base64url; a new buffer. */
static guint8 *
b64_member (JsonObject *obj, const char *name, gsize *len, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);
  GError *local = NULL;
  const char *text;
  guint8 *raw;

  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   "JWK member \"%s\" is not a string", name);
      return NULL;
    }
  text = json_node_get_string (node);
  raw = e2ee_b64url_decode (text, strlen (text), len, &local);
  if (raw == NULL)
    {
      g_autofree char *what = g_strdup_printf ("JWK member \"%s\"", name);
      bundle_error (error, local, what);
    }
  return raw;
}

gboolean
e2ee_keyset_v2_members_parse (JsonObject *obj, const E2eeKey *identity,
                              E2eeKey **sign_pub, GBytes **record, GError **error)
{
  gboolean has_sig = json_object_has_member (obj, "e2ee_sig");
  gboolean has_pk = json_object_has_member (obj, "e2ee_pk");
  g_autofree guint8 *sig_raw = NULL;
  g_autofree guint8 *pk_raw = NULL;
  gsize sig_len = 0, pk_len = 0;
  E2eeKey *pub;

  *sign_pub = NULL;
  *record = NULL;
  if (!has_sig && !has_pk)
    return TRUE;
  if (has_sig != has_pk)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   "JWK member \"%s\" without \"%s\": the signing key and the prekey "
                   "record are published together", has_sig ? "e2ee_sig" : "e2ee_pk",
                   has_sig ? "e2ee_pk" : "e2ee_sig");
      return FALSE;
    }
  if (!(e2ee_key_get_caps (identity) & E2EE_CAPS_V2))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                           "JWK carries v2 data (\"e2ee_sig\", \"e2ee_pk\") but its "
                           "\"e2ee_v\" does not list 2");
      return FALSE;
    }
  if (!(sig_raw = b64_member (obj, "e2ee_sig", &sig_len, error)))
    return FALSE;
  if (sig_len != E2EE_V2_SIGN_PUB_LEN)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   "JWK member \"e2ee_sig\" holds %" G_GSIZE_FORMAT " bytes, not %d",
                   sig_len, E2EE_V2_SIGN_PUB_LEN);
      return FALSE;
    }
  if (!(pk_raw = b64_member (obj, "e2ee_pk", &pk_len, error))
      || !e2ee_keyset_v2_record_check (pk_raw, pk_len, error))
    return FALSE;
  if (!(pub = sign_pub_from_raw (sig_raw, identity, error)))
    return FALSE;
  *sign_pub = pub;
  *record = g_bytes_new (pk_raw, pk_len);
  return TRUE;
}

static char *
sign_pub_b64 (const E2eeKey *pub)
{
  guint8 raw[E2EE_V2_SIGN_PUB_LEN];

  memcpy (raw, e2ee_key_get_x (pub), E2EE_KEY_COORD_LEN);
  memcpy (raw + E2EE_KEY_COORD_LEN, e2ee_key_get_y (pub), E2EE_KEY_COORD_LEN);
  return e2ee_b64url_encode (raw, sizeof raw);
}

static char *
record_b64 (GBytes *record)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (record, &len);

  return e2ee_b64url_encode (data, len);
}

void
e2ee_keyset_v2_members_add (JsonObject *obj, const E2eeKey *key)
{
  g_autofree char *sig = NULL;
  g_autofree char *pk = NULL;

  if (e2ee_key_get_sign_pub (key) == NULL)
    return;
  sig = sign_pub_b64 (e2ee_key_get_sign_pub (key));
  pk = record_b64 (e2ee_key_get_prekey_record (key));
  json_object_set_string_member (obj, "e2ee_sig", sig);
  json_object_set_string_member (obj, "e2ee_pk", pk);
}

void
e2ee_keyset_v2_members_append (GString *out, const E2eeKey *key)
{
  g_autofree char *sig = NULL;
  g_autofree char *pk = NULL;

  if (e2ee_key_get_sign_pub (key) == NULL)
    return;
  sig = sign_pub_b64 (e2ee_key_get_sign_pub (key));
  pk = record_b64 (e2ee_key_get_prekey_record (key));
  g_string_append_printf (out, ",\"e2ee_sig\":\"%s\",\"e2ee_pk\":\"%s\"", sig, pk);
}

/* ---- compact form ------------------------------------------------------- */

static gboolean
has_v2_data (const E2eeKey *key)
{
  return e2ee_key_get_sign_pub (key) != NULL;
}

char *
e2ee_keyset_compact_encode (GPtrArray *keys)
{
  g_autofree guint8 *buf = NULL;
  gboolean v2 = FALSE;
  gsize len = 0;

  g_return_val_if_fail (e2ee_keyset_usable (keys), NULL);

  for (guint i = 0; i < keys->len; i++)
    v2 |= has_v2_data (keys->pdata[i]);
  buf = g_malloc (E2EE_KEYSET_COMPACT_MAX);
  buf[len++] = v2 ? COMPACT_V2 : COMPACT_V1;
  for (guint i = 0; i < keys->len; i++)
    {
      const E2eeKey *key = keys->pdata[i];
      guint8 caps = e2ee_key_get_caps (key);

      /* In version 2 the v2 bit announces the attachments that follow. */
      if (v2)
        caps = has_v2_data (key) ? (caps | E2EE_CAPS_V2) : (caps & ~E2EE_CAPS_V2);
      buf[len++] = caps;
      memcpy (buf + len, e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
      len += E2EE_KEY_COORD_LEN;
      memcpy (buf + len, e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
      len += E2EE_KEY_COORD_LEN;
      if (v2 && has_v2_data (key))
        {
          const E2eeKey *pub = e2ee_key_get_sign_pub (key);
          gsize rlen;
          const guint8 *rec = g_bytes_get_data (e2ee_key_get_prekey_record (key), &rlen);

          memcpy (buf + len, e2ee_key_get_x (pub), E2EE_KEY_COORD_LEN);
          len += E2EE_KEY_COORD_LEN;
          memcpy (buf + len, e2ee_key_get_y (pub), E2EE_KEY_COORD_LEN);
          len += E2EE_KEY_COORD_LEN;
          buf[len++] = (guint8) rlen;
          memcpy (buf + len, rec, rlen);
          len += rlen;
        }
    }
  g_assert (len <= E2EE_KEYSET_COMPACT_MAX);
  return e2ee_b64url_encode (buf, len);
}

static GPtrArray *
compact_error (GError **error, GError *cause, gsize key_no)
{
  if (key_no == 0)
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER, "compact key set: %s", cause->message);
  else
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                 "compact key set, key %" G_GSIZE_FORMAT ": %s", key_no, cause->message);
  g_error_free (cause);
  return NULL;
}

/* Reads one key at raw[*pos]; advances *pos.  Lengths are checked before
 * every read: @raw_len bounds all of them. */
static E2eeKey *
compact_read_key (const guint8 *raw, gsize raw_len, gsize *pos, gboolean v2, GError **error)
{
  const guint8 *p = raw + *pos;
  g_autoptr (E2eeKey) point = NULL;
  g_autoptr (E2eeKey) pub = NULL;
  g_autoptr (GBytes) record = NULL;
  guint8 caps;
  gsize rlen;

  if (raw_len - *pos < E2EE_KEYSET_COMPACT_KEY_LEN)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "truncated key");
      return NULL;
    }
  caps = p[0] & E2EE_CAPS_MASK;
  if (!(point = e2ee_key_new_public (p + 1, p + 1 + E2EE_KEY_COORD_LEN, error)))
    return NULL;
  *pos += E2EE_KEYSET_COMPACT_KEY_LEN;
  if (!v2 || !(caps & E2EE_CAPS_V2))
    return e2ee_key_with_caps (point, caps);

  p = raw + *pos;
  if (raw_len - *pos < E2EE_V2_SIGN_PUB_LEN + 1)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                           "truncated v2 data (signing key, record length)");
      return NULL;
    }
  rlen = p[E2EE_V2_SIGN_PUB_LEN];
  if (raw_len - *pos - E2EE_V2_SIGN_PUB_LEN - 1 < rlen)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "truncated prekey record");
      return NULL;
    }
  if (!e2ee_keyset_v2_record_check (p + E2EE_V2_SIGN_PUB_LEN + 1, rlen, error)
      || !(pub = sign_pub_from_raw (p, point, error)))
    return NULL;
  record = g_bytes_new (p + E2EE_V2_SIGN_PUB_LEN + 1, rlen);
  *pos += E2EE_V2_SIGN_PUB_LEN + 1 + rlen;
  {
    g_autoptr (E2eeKey) with_caps = e2ee_key_with_caps (point, caps);
    return e2ee_key_with_v2 (with_caps, pub, record);
  }
}

GPtrArray *
e2ee_keyset_compact_decode (const char *b64, gsize len, GError **error)
{
  g_autoptr (GPtrArray) keys = NULL;
  g_autofree guint8 *raw = NULL;
  GError *local = NULL;
  gsize raw_len = 0, pos = 1;
  gboolean v2, any_v2 = FALSE;

  g_return_val_if_fail (b64 != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (len > e2ee_b64url_encoded_len (E2EE_KEYSET_COMPACT_MAX))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                   "compact key set longer than %d keys", E2EE_KEYSET_MAX);
      return NULL;
    }
  raw = e2ee_b64url_decode (b64, len, &raw_len, &local);
  if (raw == NULL)
    return compact_error (error, local, 0);
  if (raw_len == 0)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "empty compact key set");
      return NULL;
    }
  if (raw[0] != COMPACT_V1 && raw[0] != COMPACT_V2)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                   "unknown compact key set version %u", raw[0]);
      return NULL;
    }
  v2 = raw[0] == COMPACT_V2;
  if (!v2 && (raw_len - 1) % E2EE_KEYSET_COMPACT_KEY_LEN != 0)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                   "compact key set of %" G_GSIZE_FORMAT " bytes is truncated "
                   "or has trailing bytes", raw_len);
      return NULL;
    }
  if (raw_len == 1)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                           "a compact key set must hold at least one key");
      return NULL;
    }

  keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  while (pos < raw_len)
    {
      E2eeKey *key;

      if (keys->len == E2EE_KEYSET_MAX)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                       "a key set holds at most %d keys; more follow", E2EE_KEYSET_MAX);
          return NULL;
        }
      key = compact_read_key (raw, raw_len, &pos, v2, &local);
      if (key == NULL)
        return compact_error (error, local, keys->len + 1);
      any_v2 |= has_v2_data (key);
      g_ptr_array_add (keys, key);
    }
  /* One set, one encoding: a set without v2 data is written as version 1. */
  if (v2 && !any_v2)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                           "compact key set version 2 without v2 data (must be version 1)");
      return NULL;
    }
  if (!e2ee_keyset_check (keys, error))
    return NULL;
  return g_steal_pointer (&keys);
}
