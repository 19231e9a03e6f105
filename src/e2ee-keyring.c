/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-aead.h"
#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-json.h"
#include "e2ee-keyring.h"
#include "e2ee-wipe.h"

#define KEYRING_FORMAT "purple-e2ee-keyring"

/* Largest integer a JSON number keeps exactly in every reader (2^53 - 1). */
#define JSON_SAFE_MAX G_GINT64_CONSTANT (9007199254740991)

#define SEAL_SALT_LEN 16
#define SEAL_CHECK_LEN 16

/* Passphrase KDF costs.  Argon2id t=3, m=64 MiB, p=1 takes ~0.5 s here. */
#define KDF_T_DEFAULT 3
#define KDF_M_DEFAULT 65536
#define KDF_P_DEFAULT 1
/* What a file may ask for: bounded so a crafted file cannot make the
 * loader allocate gigabytes or spin for minutes. */
#define KDF_T_MAX 16
#define KDF_M_MAX (1024 * 1024)
#define KDF_P_MAX 16

#if GCRYPT_VERSION_NUMBER >= 0x010a00
#define HAVE_ARGON2 1
#define KDF_NAME_DEFAULT "argon2id"
#else
#define KDF_NAME_DEFAULT "scrypt"
#endif

struct _E2eeKeyring
{
  char *path;
  GPtrArray *accounts;          /* E2eeAccountRecord*, owned */

  /* Passphrase protection: the keys derived from the passphrase (never
   * the passphrase itself), so each save does not pay for the KDF. */
  gboolean protected;
  char *kdf;                    /* "argon2id" or "scrypt" */
  guint32 kdf_t, kdf_m, kdf_p;
  guint8 salt[SEAL_SALT_LEN];
  guint8 *seal_key;             /* E2EE_AEAD_KEY_LEN, secret */
  guint8 check[SEAL_CHECK_LEN];
};

/* ------------------------------------------------------------------ */
/* Enumerations */

static const char *const trust_names[] = {
  [E2EE_TRUST_UNDECIDED] = "undecided",
  [E2EE_TRUST_TOFU] = "tofu",
  [E2EE_TRUST_VERIFIED] = "verified",
  [E2EE_TRUST_REJECTED] = "rejected",
};

static const char *const policy_names[] = {
  [E2EE_POLICY_DEFAULT] = "default",
  [E2EE_POLICY_OFF] = "off",
  [E2EE_POLICY_OPPORTUNISTIC] = "opportunistic",
  [E2EE_POLICY_REQUIRED] = "required",
};

const char *
e2ee_trust_to_string (E2eeTrust trust)
{
  if ((guint) trust >= G_N_ELEMENTS (trust_names))
    return NULL;
  return trust_names[trust];
}

gboolean
e2ee_trust_from_string (const char *text, E2eeTrust *out)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (text == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (trust_names); i++)
    if (strcmp (text, trust_names[i]) == 0)
      {
        *out = (E2eeTrust) i;
        return TRUE;
      }
  return FALSE;
}

const char *
e2ee_policy_to_string (E2eePolicy policy)
{
  if ((guint) policy >= G_N_ELEMENTS (policy_names))
    return NULL;
  return policy_names[policy];
}

gboolean
e2ee_policy_from_string (const char *text, E2eePolicy *out)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (text == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (policy_names); i++)
    if (strcmp (text, policy_names[i]) == 0)
      {
        *out = (E2eePolicy) i;
        return TRUE;
      }
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Records */

E2eeDeviceRecord *
e2ee_device_record_new (E2eeKey *key, E2eeTrust trust, gint64 now)
{
  E2eeDeviceRecord *device;

  g_return_val_if_fail (key != NULL, NULL);
  device = g_new0 (E2eeDeviceRecord, 1);
  device->key = e2ee_key_ref (key);
  device->trust = trust;
  device->first_seen = now;
  device->last_seen = now;
  return device;
}

void
e2ee_device_record_free (E2eeDeviceRecord *device)
{
  if (device == NULL)
    return;
  if (device->key != NULL)
    e2ee_key_unref (device->key);
  /* The derived keys are secrets; the rest goes with them. */
  e2ee_wipe (device, sizeof *device);
  g_free (device);
}

static void
buddy_record_free (E2eeBuddyRecord *buddy)
{
  if (buddy == NULL)
    return;
  g_ptr_array_unref (buddy->devices);
  g_free (buddy->name);
  g_free (buddy);
}

static E2eeBuddyRecord *
buddy_record_new (const char *name)
{
  E2eeBuddyRecord *buddy = g_new0 (E2eeBuddyRecord, 1);

  buddy->name = g_strdup (name);
  buddy->policy = E2EE_POLICY_DEFAULT;
  buddy->devices = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_device_record_free);
  return buddy;
}

static E2eeAccountRecord *
account_record_new (const char *protocol, const char *name, E2eeKey *identity)
{
  E2eeAccountRecord *account = g_new0 (E2eeAccountRecord, 1);

  account->protocol = g_strdup (protocol);
  account->name = g_strdup (name);
  account->identity = identity != NULL ? e2ee_key_ref (identity) : NULL;
  /* The key is the record's own name, freed with the record. */
  account->buddies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify) buddy_record_free);
  return account;
}

static void
account_record_free (E2eeAccountRecord *account)
{
  if (account == NULL)
    return;
  g_hash_table_unref (account->buddies);
  if (account->identity != NULL)
    e2ee_key_unref (account->identity);
  g_free (account->protocol);
  g_free (account->name);
  g_free (account);
}

E2eeBuddyRecord *
e2ee_account_lookup_buddy (E2eeAccountRecord *account, const char *name)
{
  g_return_val_if_fail (account != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return g_hash_table_lookup (account->buddies, name);
}

E2eeBuddyRecord *
e2ee_account_ensure_buddy (E2eeAccountRecord *account, const char *name)
{
  E2eeBuddyRecord *buddy;

  g_return_val_if_fail (account != NULL, NULL);
  g_return_val_if_fail (name != NULL && *name != '\0', NULL);
  buddy = g_hash_table_lookup (account->buddies, name);
  if (buddy == NULL)
    {
      buddy = buddy_record_new (name);
      g_hash_table_insert (account->buddies, buddy->name, buddy);
    }
  return buddy;
}

gboolean
e2ee_account_remove_buddy (E2eeAccountRecord *account, const char *name)
{
  g_return_val_if_fail (account != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  return g_hash_table_remove (account->buddies, name);
}

E2eeDeviceRecord *
e2ee_buddy_find_device (E2eeBuddyRecord *buddy, const E2eeKey *key)
{
  g_return_val_if_fail (buddy != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  for (guint i = 0; i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *device = g_ptr_array_index (buddy->devices, i);
      if (e2ee_key_equal (device->key, key))
        return device;
    }
  return NULL;
}

E2eeDeviceRecord *
e2ee_buddy_find_device_by_kid (E2eeBuddyRecord *buddy, const char *kid)
{
  g_return_val_if_fail (buddy != NULL, NULL);
  g_return_val_if_fail (kid != NULL, NULL);
  for (guint i = 0; i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *device = g_ptr_array_index (buddy->devices, i);
      if (strcmp (e2ee_key_get_kid (device->key), kid) == 0)
        return device;
    }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The keyring object */

E2eeKeyring *
e2ee_keyring_new (const char *path)
{
  E2eeKeyring *keyring;

  g_return_val_if_fail (path != NULL && *path != '\0', NULL);
  keyring = g_new0 (E2eeKeyring, 1);
  keyring->path = g_strdup (path);
  keyring->accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) account_record_free);
  return keyring;
}

static void
clear_protection (E2eeKeyring *keyring)
{
  keyring->protected = FALSE;
  g_clear_pointer (&keyring->kdf, g_free);
  keyring->kdf_t = keyring->kdf_m = keyring->kdf_p = 0;
  e2ee_secret_free (keyring->seal_key, E2EE_AEAD_KEY_LEN);
  keyring->seal_key = NULL;
  e2ee_wipe (keyring->salt, sizeof keyring->salt);
  e2ee_wipe (keyring->check, sizeof keyring->check);
}

void
e2ee_keyring_free (E2eeKeyring *keyring)
{
  if (keyring == NULL)
    return;
  clear_protection (keyring);
  g_ptr_array_unref (keyring->accounts);
  g_free (keyring->path);
  g_free (keyring);
}

const char *
e2ee_keyring_get_path (const E2eeKeyring *keyring)
{
  g_return_val_if_fail (keyring != NULL, NULL);
  return keyring->path;
}

gboolean
e2ee_keyring_is_protected (const E2eeKeyring *keyring)
{
  g_return_val_if_fail (keyring != NULL, FALSE);
  return keyring->protected;
}

E2eeAccountRecord *
e2ee_keyring_lookup_account (E2eeKeyring *keyring, const char *protocol,
                             const char *name)
{
  g_return_val_if_fail (keyring != NULL, NULL);
  g_return_val_if_fail (protocol != NULL && name != NULL, NULL);
  for (guint i = 0; i < keyring->accounts->len; i++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, i);
      if (strcmp (account->protocol, protocol) == 0 && strcmp (account->name, name) == 0)
        return account;
    }
  return NULL;
}

E2eeAccountRecord *
e2ee_keyring_add_account (E2eeKeyring *keyring, const char *protocol,
                          const char *name, E2eeKey *identity)
{
  E2eeAccountRecord *account;

  g_return_val_if_fail (keyring != NULL, NULL);
  g_return_val_if_fail (protocol != NULL && *protocol != '\0', NULL);
  g_return_val_if_fail (name != NULL && *name != '\0', NULL);
  g_return_val_if_fail (identity != NULL && e2ee_key_has_private (identity), NULL);
  g_return_val_if_fail (e2ee_keyring_lookup_account (keyring, protocol, name) == NULL, NULL);

  account = account_record_new (protocol, name, identity);
  g_ptr_array_add (keyring->accounts, account);
  return account;
}

GPtrArray *
e2ee_keyring_get_accounts (E2eeKeyring *keyring)
{
  g_return_val_if_fail (keyring != NULL, NULL);
  return keyring->accounts;
}

/* ------------------------------------------------------------------ */
/* Passphrase key derivation */

static gboolean
kdf_name_supported (const char *name)
{
#ifdef HAVE_ARGON2
  if (strcmp (name, "argon2id") == 0)
    return TRUE;
#endif
  return strcmp (name, "scrypt") == 0;
}

/* Checks the cost parameters a file (or we) ask for.  For scrypt, m is N
 * (a power of two) with r = 8, and t must be 1. */
static gboolean
kdf_params_valid (const char *name, gint64 t, gint64 m, gint64 p)
{
  if (p < 1 || p > KDF_P_MAX)
    return FALSE;
  if (strcmp (name, "scrypt") == 0)
    return t == 1 && m >= 2 && m <= KDF_M_MAX && (m & (m - 1)) == 0;
  return t >= 1 && t <= KDF_T_MAX && m >= 8 * p && m <= KDF_M_MAX;
}

static gboolean
kdf_derive (const char *name, guint32 t, guint32 m, guint32 p,
            const char *passphrase, const guint8 *salt, gsize salt_len,
            guint8 out[32], GError **error)
{
  gcry_error_t err = 0;

#ifdef HAVE_ARGON2
  if (strcmp (name, "argon2id") == 0)
    {
      unsigned long params[4] = { 32, t, m, p };
      gcry_kdf_hd_t hd = NULL;

      err = gcry_kdf_open (&hd, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, params, 4,
                           passphrase, strlen (passphrase), salt, salt_len,
                           NULL, 0, NULL, 0);
      if (!err)
        err = gcry_kdf_compute (hd, NULL);
      if (!err)
        err = gcry_kdf_final (hd, 32, out);
      if (hd != NULL)
        gcry_kdf_close (hd);
      goto out;
    }
#endif
  if (strcmp (name, "scrypt") == 0)
    {
      (void) t;
      err = gcry_kdf_derive (passphrase, strlen (passphrase), GCRY_KDF_SCRYPT, m,
                             salt, salt_len, p, 32, out);
      goto out;
    }
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
               "keyring: unsupported passphrase KDF \"%s\"", name);
  return FALSE;

out:
  if (err)
    {
      e2ee_wipe (out, 32);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "keyring: passphrase KDF %s failed: %s", name, gcry_strerror (err));
      return FALSE;
    }
  return TRUE;
}

/* The KDF output is split by HMAC into the sealing key and a check value
 * stored in the file: the check tells a wrong passphrase from a file whose
 * protected part was tampered with. */
static gboolean
kdf_expand (const guint8 master[32], const char *label, guint8 *out, gsize out_len,
            GError **error)
{
  guint8 mac[32];
  gcry_buffer_t iov[1] = { { 0 } };
  gcry_error_t err;

  iov[0].data = (void *) label;
  iov[0].len = strlen (label);
  /* With GCRY_MD_FLAG_HMAC the first buffer is the key. */
  {
    gcry_buffer_t all[2] = { { 0 } };
    all[0].data = (void *) master;
    all[0].len = 32;
    all[1] = iov[0];
    err = gcry_md_hash_buffers (GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC, mac, all, 2);
  }
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

static gboolean
derive_seal_keys (const char *name, guint32 t, guint32 m, guint32 p,
                  const char *passphrase, const guint8 salt[SEAL_SALT_LEN],
                  guint8 *seal_key, guint8 check[SEAL_CHECK_LEN], GError **error)
{
  guint8 master[32];
  gboolean ok;

  ok = kdf_derive (name, t, m, p, passphrase, salt, SEAL_SALT_LEN, master, error)
       && kdf_expand (master, "purple-e2ee keyring seal key", seal_key,
                      E2EE_AEAD_KEY_LEN, error)
       && kdf_expand (master, "purple-e2ee keyring check", check, SEAL_CHECK_LEN, error);
  e2ee_wipe (master, sizeof master);
  if (!ok)
    {
      e2ee_wipe (seal_key, E2EE_AEAD_KEY_LEN);
      e2ee_wipe (check, SEAL_CHECK_LEN);
    }
  return ok;
}

gboolean
e2ee_keyring_set_passphrase (E2eeKeyring *keyring, const char *passphrase,
                             GError **error)
{
  guint8 *seal_key;
  guint8 salt[SEAL_SALT_LEN];
  guint8 check[SEAL_CHECK_LEN];
  guint32 t = KDF_T_DEFAULT, m = KDF_M_DEFAULT, p = KDF_P_DEFAULT;
  const char *name = KDF_NAME_DEFAULT;

  g_return_val_if_fail (keyring != NULL, FALSE);

  if (passphrase == NULL)
    {
      clear_protection (keyring);
      return TRUE;
    }
  if (*passphrase == '\0')
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                   "keyring: the passphrase is empty");
      return FALSE;
    }

  /* Test-only hook: the unit tests would otherwise spend most of their
   * time (and, under valgrind, minutes) in the KDF.  Never set it in a
   * real environment: it makes the passphrase cheap to guess. */
  if (g_strcmp0 (g_getenv ("E2EE_TEST_FAST_KDF"), "1") == 0)
    {
      t = 1;
      m = strcmp (name, "scrypt") == 0 ? 16 : 64;
    }
  else if (strcmp (name, "scrypt") == 0)
    {
      t = 1;
      m = 32768;
    }

  e2ee_random_key (salt, sizeof salt);
  seal_key = e2ee_secret_alloc (E2EE_AEAD_KEY_LEN);
  if (!derive_seal_keys (name, t, m, p, passphrase, salt, seal_key, check, error))
    {
      e2ee_secret_free (seal_key, E2EE_AEAD_KEY_LEN);
      return FALSE;
    }

  clear_protection (keyring);
  keyring->protected = TRUE;
  keyring->kdf = g_strdup (name);
  keyring->kdf_t = t;
  keyring->kdf_m = m;
  keyring->kdf_p = p;
  memcpy (keyring->salt, salt, sizeof salt);
  memcpy (keyring->check, check, sizeof check);
  keyring->seal_key = seal_key;
  e2ee_wipe (check, sizeof check);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* JSON helpers */

/* json-glib frees its strings without wiping them.  Before a tree that
 * held private or derived keys goes away, overwrite every string value in
 * it (the buffers belong to the tree, so writing through them is safe). */
static void
wipe_json_node (JsonNode *node)
{
  if (node == NULL)
    return;
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        g_autoptr (GList) values = json_object_get_values (object);
        for (GList *l = values; l != NULL; l = l->next)
          wipe_json_node (l->data);
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        for (guint i = 0; i < json_array_get_length (array); i++)
          wipe_json_node (json_array_get_element (array, i));
        break;
      }
    case JSON_NODE_VALUE:
      if (json_node_get_value_type (node) == G_TYPE_STRING)
        {
          char *s = (char *) json_node_get_string (node);
          if (s != NULL)
            e2ee_wipe (s, strlen (s));
        }
      break;
    case JSON_NODE_NULL:
    default:
      break;
    }
}

static void
wipe_json_object (JsonObject *object)
{
  g_autoptr (JsonNode) node = NULL;

  if (object == NULL)
    return;
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (node, object);
  wipe_json_node (node);
}

/* Serialises @root into a buffer that can be wiped.  The GString is
 * sized up front so that the secrets are not left behind by reallocation
 * (json-glib's own temporaries are beyond our reach). */
static GString *
json_to_secret_string (JsonObject *root, gsize hint)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  GString *out = g_string_sized_new (hint);

  json_node_set_object (node, root);
  json_generator_set_root (generator, node);
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 1);
  json_generator_to_gstring (generator, out);
  g_string_append_c (out, '\n');
  return out;
}

static gboolean G_GNUC_PRINTF (3, 4)
corrupt (GError **error, const char *where, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
               "keyring is corrupt: %s: %s", where, msg);
  return FALSE;
}

/* What e2ee_json_parse_strict leaves to json-glib, which is lenient:
 * one top-level object and nothing after it, no comments or single quotes
 * (only JSON's own characters outside strings), and no integer literal
 * long enough to wrap around in json-glib's gint64. */
static gboolean
check_json_text (const char *text, gsize len, GError **error)
{
  static const char allowed[] = " \t\n\r{}[],:-+.0123456789eEtrufalsn";
  guint depth = 0, digits = 0;
  gboolean started = FALSE, ended = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        {
          digits = 0;
          continue;
        }
      if (ended)
        return corrupt (error, "document", "data after the end of the JSON object");
      if (!started && c != '{')
        return corrupt (error, "document", "not a JSON object");
      started = TRUE;
      if (c == '"')
        {
          for (i++; i < len && text[i] != '"'; i++)
            if (text[i] == '\\')
              i++;
          if (i >= len)
            return corrupt (error, "document", "unterminated string");
          digits = 0;
          continue;
        }
      if (c == '\0' || strchr (allowed, c) == NULL)
        return corrupt (error, "document", "unexpected character 0x%02x", (guint8) c);
      if (g_ascii_isdigit (c))
        {
          if (++digits > 16)
            return corrupt (error, "document", "number too long");
        }
      else
        digits = 0;
      if (c == '{' || c == '[')
        depth++;
      else if ((c == '}' || c == ']') && depth > 0 && --depth == 0)
        ended = TRUE;
    }
  return TRUE;
}

static JsonNode *
parse_json (const char *text, gsize len, GError **error)
{
  g_autoptr (GError) local = NULL;
  JsonNode *root;

  if (!check_json_text (text, len, error))
    return NULL;
  root = e2ee_json_parse_strict (text, (gssize) len, E2EE_JSON_MAX_DEPTH,
                                 E2EE_ERROR_KEYRING_CORRUPT, &local);
  if (root == NULL)
    corrupt (error, "document", "%s", local->message);
  else if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      corrupt (error, "document", "not a JSON object");
      json_node_unref (root);
      root = NULL;
    }
  return root;
}

static gboolean
check_members (JsonObject *object, const char *const *allowed, const char *where,
               GError **error)
{
  g_autoptr (GList) names = json_object_get_members (object);

  for (GList *l = names; l != NULL; l = l->next)
    {
      if (!g_strv_contains (allowed, l->data))
        return corrupt (error, where, "unknown member \"%s\"", (const char *) l->data);
    }
  return TRUE;
}

static JsonNode *
need_member (JsonObject *object, const char *name, const char *where, GError **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL)
    corrupt (error, where, "member \"%s\" is missing", name);
  return node;
}

static gboolean
get_string (JsonObject *object, const char *name, const char *where,
            const char **out, GError **error)
{
  JsonNode *node = need_member (object, name, where, error);

  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return corrupt (error, where, "\"%s\" is not a string", name);
  *out = json_node_get_string (node);
  if (**out == '\0')
    return corrupt (error, where, "\"%s\" is empty", name);
  return TRUE;
}

static gboolean
get_int (JsonObject *object, const char *name, const char *where,
         gint64 min, gint64 max, gint64 *out, GError **error)
{
  JsonNode *node = need_member (object, name, where, error);
  gint64 v;

  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return corrupt (error, where, "\"%s\" is not an integer", name);
  v = json_node_get_int (node);
  if (v < min || v > max)
    return corrupt (error, where, "\"%s\" is out of range", name);
  *out = v;
  return TRUE;
}

static gboolean
get_bool (JsonObject *object, const char *name, const char *where,
          gboolean *out, GError **error)
{
  JsonNode *node = need_member (object, name, where, error);

  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return corrupt (error, where, "\"%s\" is not a boolean", name);
  *out = json_node_get_boolean (node);
  return TRUE;
}

static JsonObject *
get_object (JsonObject *object, const char *name, const char *where, GError **error)
{
  JsonNode *node = need_member (object, name, where, error);

  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      corrupt (error, where, "\"%s\" is not an object", name);
      return NULL;
    }
  return json_node_get_object (node);
}

static JsonArray *
get_array (JsonObject *object, const char *name, const char *where, GError **error)
{
  JsonNode *node = need_member (object, name, where, error);

  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      corrupt (error, where, "\"%s\" is not an array", name);
      return NULL;
    }
  return json_node_get_array (node);
}

static JsonObject *
array_object (JsonArray *array, guint i, const char *where, GError **error)
{
  JsonNode *node = json_array_get_element (array, i);

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      corrupt (error, where, "element is not an object");
      return NULL;
    }
  return json_node_get_object (node);
}

/* Exactly @len bytes of unpadded base64url, into @out. */
static gboolean
get_b64 (JsonObject *object, const char *name, const char *where,
         guint8 *out, gsize len, GError **error)
{
  const char *text;
  guint8 *raw;
  gsize raw_len = 0;

  if (!get_string (object, name, where, &text, error))
    return FALSE;
  raw = e2ee_b64url_decode (text, strlen (text), &raw_len, NULL);
  if (raw == NULL || raw_len != len)
    {
      e2ee_secret_free (raw, raw_len);
      return corrupt (error, where, "\"%s\" is not %" G_GSIZE_FORMAT
                      " bytes of base64url", name, len);
    }
  memcpy (out, raw, len);
  e2ee_secret_free (raw, raw_len);
  return TRUE;
}

static void
set_b64 (JsonObject *object, const char *name, const guint8 *data, gsize len)
{
  char *text = e2ee_b64url_encode (data, len);

  json_object_set_string_member (object, name, text);
  e2ee_string_free (text);
}

static const char *const root_members[] = { "format", "version", "accounts", "sealed", NULL };
static const char *const account_members[] = { "protocol", "name", "identity",
                                               "last_counter", "buddies", NULL };
static const char *const buddy_members[] = { "name", "policy", "key_changed",
                                             "had_encrypted", "devices", NULL };
static const char *const device_members[] = { "jwk", "trust", "first_seen", "last_seen",
                                              "replay", "derived", NULL };
static const char *const replay_members[] = { "high", "window", NULL };
static const char *const derived_members[] = { "local_caps", "remote_caps", "send",
                                               "recv", NULL };
static const char *const sealed_members[] = { "kdf", "t", "m", "p", "salt", "check",
                                              "iv", "ct", NULL };
static const char *const secrets_members[] = { "accounts", NULL };
static const char *const secret_account_members[] = { "protocol", "name", "d",
                                                      "derived", NULL };
static const char *const secret_derived_members[] = { "buddy", "kid", "local_caps",
                                                      "remote_caps", "send", "recv",
                                                      NULL };

/* ------------------------------------------------------------------ */
/* Writing */

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (a, b);
}

/* Buddy names in a stable order, so that the same keyring always gives
 * the same bytes (and the same sealing AAD). */
static GList *
sorted_buddy_names (E2eeAccountRecord *account)
{
  return g_list_sort (g_hash_table_get_keys (account->buddies), compare_strings);
}

static gboolean
check_save_ranges (E2eeKeyring *keyring, GError **error)
{
  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      GHashTableIter iter;
      gpointer value;

      if (account->identity == NULL || !e2ee_key_has_private (account->identity)
          || account->last_counter > (guint64) JSON_SAFE_MAX)
        goto bad;
      g_hash_table_iter_init (&iter, account->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          E2eeBuddyRecord *buddy = value;
          if (e2ee_policy_to_string (buddy->policy) == NULL)
            goto bad;
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = g_ptr_array_index (buddy->devices, d);
              if (e2ee_trust_to_string (dev->trust) == NULL
                  || dev->first_seen < -JSON_SAFE_MAX || dev->first_seen > JSON_SAFE_MAX
                  || dev->last_seen < -JSON_SAFE_MAX || dev->last_seen > JSON_SAFE_MAX
                  || (dev->replay_init && dev->replay_high > (guint64) JSON_SAFE_MAX))
                goto bad;
            }
        }
    }
  return TRUE;

bad:
  /* Writing it would give a file the loader refuses. */
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED,
               "keyring: refusing to save a record with an invalid value");
  return FALSE;
}

static JsonObject *
derived_to_json (const E2eeDeviceRecord *dev, const char *buddy)
{
  JsonObject *o = json_object_new ();

  if (buddy != NULL)
    {
      json_object_set_string_member (o, "buddy", buddy);
      json_object_set_string_member (o, "kid", e2ee_key_get_kid (dev->key));
    }
  json_object_set_int_member (o, "local_caps", dev->keys_local_caps);
  json_object_set_int_member (o, "remote_caps", dev->keys_remote_caps);
  set_b64 (o, "send", dev->k_send, E2EE_KEY_LEN);
  set_b64 (o, "recv", dev->k_recv, E2EE_KEY_LEN);
  return o;
}

static JsonObject *
device_to_json (const E2eeDeviceRecord *dev, gboolean with_secrets)
{
  JsonObject *o = json_object_new ();

  json_object_set_object_member (o, "jwk", e2ee_key_to_jwk_object (dev->key, FALSE, TRUE));
  json_object_set_string_member (o, "trust", e2ee_trust_to_string (dev->trust));
  json_object_set_int_member (o, "first_seen", dev->first_seen);
  json_object_set_int_member (o, "last_seen", dev->last_seen);
  if (dev->replay_init)
    {
      JsonObject *replay = json_object_new ();
      /* The window is a 64-bit bitmap: above 2^53, so a hex string. */
      char window[17];
      g_snprintf (window, sizeof window, "%016" G_GINT64_MODIFIER "x", dev->replay_window);
      json_object_set_int_member (replay, "high", (gint64) dev->replay_high);
      json_object_set_string_member (replay, "window", window);
      json_object_set_object_member (o, "replay", replay);
    }
  if (with_secrets && dev->have_keys)
    json_object_set_object_member (o, "derived", derived_to_json (dev, NULL));
  return o;
}

/* The whole document.  With @secrets NULL the secret parts are written in
 * place; otherwise they are left out of the document and collected in
 * *@secrets for sealing. */
static JsonObject *
keyring_to_json (E2eeKeyring *keyring, JsonObject **secrets)
{
  JsonObject *root = json_object_new ();
  JsonArray *accounts = json_array_new ();
  JsonArray *secret_accounts = NULL;

  json_object_set_string_member (root, "format", KEYRING_FORMAT);
  json_object_set_int_member (root, "version", E2EE_KEYRING_FORMAT_VERSION);
  if (secrets != NULL)
    {
      *secrets = json_object_new ();
      secret_accounts = json_array_new ();
      json_object_set_array_member (*secrets, "accounts", secret_accounts);
    }

  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      JsonObject *ao = json_object_new ();
      JsonArray *buddies = json_array_new ();
      JsonObject *secret_account = NULL;
      JsonArray *secret_derived = NULL;
      g_autoptr (GList) names = sorted_buddy_names (account);

      json_object_set_string_member (ao, "protocol", account->protocol);
      json_object_set_string_member (ao, "name", account->name);
      if (secrets == NULL)
        json_object_set_object_member (ao, "identity",
                                       e2ee_key_to_jwk_object (account->identity, TRUE, TRUE));
      else
        {
          JsonObject *priv = e2ee_key_to_jwk_object (account->identity, TRUE, FALSE);

          json_object_set_object_member (ao, "identity",
                                         e2ee_key_to_jwk_object (account->identity, FALSE, TRUE));
          secret_account = json_object_new ();
          secret_derived = json_array_new ();
          json_object_set_string_member (secret_account, "protocol", account->protocol);
          json_object_set_string_member (secret_account, "name", account->name);
          json_object_set_string_member (secret_account, "d",
                                         json_object_get_string_member (priv, "d"));
          json_object_set_array_member (secret_account, "derived", secret_derived);
          json_array_add_object_element (secret_accounts, secret_account);
          wipe_json_object (priv);
          json_object_unref (priv);
        }
      json_object_set_int_member (ao, "last_counter", (gint64) account->last_counter);

      for (GList *l = names; l != NULL; l = l->next)
        {
          E2eeBuddyRecord *buddy = g_hash_table_lookup (account->buddies, l->data);
          JsonObject *bo = json_object_new ();
          JsonArray *devices = json_array_new ();

          json_object_set_string_member (bo, "name", buddy->name);
          json_object_set_string_member (bo, "policy", e2ee_policy_to_string (buddy->policy));
          json_object_set_boolean_member (bo, "key_changed", buddy->key_changed);
          json_object_set_boolean_member (bo, "had_encrypted", buddy->had_encrypted);
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = g_ptr_array_index (buddy->devices, d);
              json_array_add_object_element (devices, device_to_json (dev, secrets == NULL));
              if (secrets != NULL && dev->have_keys)
                json_array_add_object_element (secret_derived,
                                               derived_to_json (dev, buddy->name));
            }
          json_object_set_array_member (bo, "devices", devices);
          json_array_add_object_element (buddies, bo);
        }
      json_object_set_array_member (ao, "buddies", buddies);
      json_array_add_object_element (accounts, ao);
    }
  json_object_set_array_member (root, "accounts", accounts);
  return root;
}

/* The AAD of the sealed part: a length-prefixed binary form of everything
 * the file holds in clear (independent of JSON formatting, so a json-glib
 * update cannot make old files unreadable).  Built from records, so load
 * and save compute it the same way. */
static void
aad_u64 (GByteArray *b, guint64 v)
{
  guint8 buf[8];
  for (int i = 7; i >= 0; i--, v >>= 8)
    buf[i] = (guint8) v;
  g_byte_array_append (b, buf, 8);
}

static void
aad_u8 (GByteArray *b, guint v)
{
  guint8 c = (guint8) v;
  g_byte_array_append (b, &c, 1);
}

static void
aad_str (GByteArray *b, const char *s)
{
  gsize n = strlen (s);
  aad_u64 (b, n);
  g_byte_array_append (b, (const guint8 *) s, n);
}

static void
aad_key (GByteArray *b, const E2eeKey *key)
{
  g_byte_array_append (b, e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
  g_byte_array_append (b, e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
  aad_u8 (b, e2ee_key_get_caps (key));
}

static GByteArray *
keyring_aad (E2eeKeyring *keyring)
{
  GByteArray *b = g_byte_array_new ();

  aad_str (b, KEYRING_FORMAT);
  aad_u64 (b, E2EE_KEYRING_FORMAT_VERSION);
  aad_u64 (b, keyring->accounts->len);
  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      g_autoptr (GList) names = sorted_buddy_names (account);

      aad_str (b, account->protocol);
      aad_str (b, account->name);
      aad_key (b, account->identity);
      aad_u64 (b, account->last_counter);
      aad_u64 (b, g_hash_table_size (account->buddies));
      for (GList *l = names; l != NULL; l = l->next)
        {
          E2eeBuddyRecord *buddy = g_hash_table_lookup (account->buddies, l->data);

          aad_str (b, buddy->name);
          aad_u8 (b, buddy->policy);
          aad_u8 (b, buddy->key_changed ? 1 : 0);
          aad_u8 (b, buddy->had_encrypted ? 1 : 0);
          aad_u64 (b, buddy->devices->len);
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = g_ptr_array_index (buddy->devices, d);

              aad_key (b, dev->key);
              aad_u8 (b, dev->trust);
              aad_u64 (b, (guint64) dev->first_seen);
              aad_u64 (b, (guint64) dev->last_seen);
              aad_u8 (b, dev->replay_init ? 1 : 0);
              if (dev->replay_init)
                {
                  aad_u64 (b, dev->replay_high);
                  aad_u64 (b, dev->replay_window);
                }
            }
        }
    }
  return b;
}

static gsize
size_hint (E2eeKeyring *keyring)
{
  gsize n = 1024;

  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      GHashTableIter iter;
      gpointer value;

      n += 1024 + strlen (account->protocol) + strlen (account->name);
      g_hash_table_iter_init (&iter, account->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          E2eeBuddyRecord *buddy = value;
          n += 256 + 2 * strlen (buddy->name) + 1024 * buddy->devices->len;
        }
    }
  return n;
}

static gboolean
seal_secrets (E2eeKeyring *keyring, JsonObject *root, JsonObject *secrets,
              GError **error)
{
  g_autoptr (GByteArray) aad = keyring_aad (keyring);
  g_autoptr (E2eeAead) aead = NULL;
  GString *plain = json_to_secret_string (secrets, size_hint (keyring));
  guint8 iv[E2EE_AEAD_IV_LEN];
  guint8 *ct = NULL;
  JsonObject *sealed;
  gboolean ok = FALSE;

  aead = e2ee_aead_new (keyring->seal_key, error);
  if (aead == NULL)
    goto out;
  e2ee_aead_random_iv (iv);
  ct = g_malloc (plain->len + E2EE_AEAD_TAG_LEN);
  if (!e2ee_aead_seal (aead, iv, aad->data, aad->len, (const guint8 *) plain->str,
                       plain->len, ct, ct + plain->len, error))
    goto out;

  sealed = json_object_new ();
  json_object_set_string_member (sealed, "kdf", keyring->kdf);
  json_object_set_int_member (sealed, "t", keyring->kdf_t);
  json_object_set_int_member (sealed, "m", keyring->kdf_m);
  json_object_set_int_member (sealed, "p", keyring->kdf_p);
  set_b64 (sealed, "salt", keyring->salt, SEAL_SALT_LEN);
  set_b64 (sealed, "check", keyring->check, SEAL_CHECK_LEN);
  set_b64 (sealed, "iv", iv, sizeof iv);
  /* ct is the ciphertext followed by the 16-byte tag. */
  set_b64 (sealed, "ct", ct, plain->len + E2EE_AEAD_TAG_LEN);
  json_object_set_object_member (root, "sealed", sealed);
  ok = TRUE;

out:
  g_free (ct);
  e2ee_gstring_free (plain);
  return ok;
}

/* The file's bytes, in a GString to be freed with e2ee_gstring_free(). */
static GString *
keyring_serialise (E2eeKeyring *keyring, GError **error)
{
  JsonObject *root = NULL;
  JsonObject *secrets = NULL;
  GString *out = NULL;

  if (!check_save_ranges (keyring, error))
    return NULL;
  if (keyring->protected)
    {
      root = keyring_to_json (keyring, &secrets);
      if (!seal_secrets (keyring, root, secrets, error))
        goto out;
    }
  else
    root = keyring_to_json (keyring, NULL);
  out = json_to_secret_string (root, size_hint (keyring));

out:
  if (secrets != NULL)
    {
      wipe_json_object (secrets);
      json_object_unref (secrets);
    }
  wipe_json_object (root);
  json_object_unref (root);
  return out;
}

/* ------------------------------------------------------------------ */
/* Reading */

static E2eeKey *
parse_key (JsonObject *object, E2eeKeyExpect expect, const char *where, GError **error)
{
  g_autoptr (GError) local = NULL;
  E2eeKey *key = e2ee_key_from_jwk_object (object, expect, &local);

  if (key == NULL)
    corrupt (error, where, "bad key: %s", local->message);
  return key;
}

static gboolean
parse_derived (JsonObject *o, const char *where, E2eeDeviceRecord *dev, GError **error)
{
  gint64 local_caps, remote_caps;

  if (!get_int (o, "local_caps", where, 0, 255, &local_caps, error)
      || !get_int (o, "remote_caps", where, 0, 255, &remote_caps, error)
      || !get_b64 (o, "send", where, dev->k_send, E2EE_KEY_LEN, error)
      || !get_b64 (o, "recv", where, dev->k_recv, E2EE_KEY_LEN, error))
    {
      e2ee_wipe (dev->k_send, E2EE_KEY_LEN);
      e2ee_wipe (dev->k_recv, E2EE_KEY_LEN);
      return FALSE;
    }
  dev->keys_local_caps = (guint8) local_caps;
  dev->keys_remote_caps = (guint8) remote_caps;
  dev->have_keys = TRUE;
  return TRUE;
}

static gboolean
parse_window (const char *text, guint64 *out)
{
  guint64 v = 0;

  if (strlen (text) != 16)
    return FALSE;
  for (int i = 0; i < 16; i++)
    {
      char c = text[i];
      int digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else
        return FALSE;
      v = v << 4 | (guint64) digit;
    }
  *out = v;
  return TRUE;
}

static E2eeDeviceRecord *
parse_device (JsonObject *o, const char *where, gboolean sealed, GError **error)
{
  E2eeDeviceRecord *dev = g_new0 (E2eeDeviceRecord, 1);
  JsonObject *jwk, *sub;
  const char *text;
  gint64 v;

  if (!check_members (o, device_members, where, error))
    goto fail;
  jwk = get_object (o, "jwk", where, error);
  if (jwk == NULL)
    goto fail;
  if (!json_object_has_member (jwk, "kid"))
    {
      corrupt (error, where, "device key has no kid");
      goto fail;
    }
  dev->key = parse_key (jwk, E2EE_KEY_EXPECT_PUBLIC, where, error);
  if (dev->key == NULL)
    goto fail;

  if (!get_string (o, "trust", where, &text, error))
    goto fail;
  if (!e2ee_trust_from_string (text, &dev->trust))
    {
      corrupt (error, where, "unknown trust \"%s\"", text);
      goto fail;
    }
  if (!get_int (o, "first_seen", where, -JSON_SAFE_MAX, JSON_SAFE_MAX, &dev->first_seen, error)
      || !get_int (o, "last_seen", where, -JSON_SAFE_MAX, JSON_SAFE_MAX, &dev->last_seen, error))
    goto fail;

  if (json_object_has_member (o, "replay"))
    {
      sub = get_object (o, "replay", where, error);
      if (sub == NULL || !check_members (sub, replay_members, where, error)
          || !get_int (sub, "high", where, 0, JSON_SAFE_MAX, &v, error)
          || !get_string (sub, "window", where, &text, error))
        goto fail;
      dev->replay_high = (guint64) v;
      if (!parse_window (text, &dev->replay_window))
        {
          corrupt (error, where, "replay window is not 16 lower-case hex digits");
          goto fail;
        }
      dev->replay_init = TRUE;
    }

  if (json_object_has_member (o, "derived"))
    {
      if (sealed)
        {
          corrupt (error, where, "derived keys in clear in a protected keyring");
          goto fail;
        }
      sub = get_object (o, "derived", where, error);
      if (sub == NULL || !check_members (sub, derived_members, where, error)
          || !parse_derived (sub, where, dev, error))
        goto fail;
    }
  return dev;

fail:
  e2ee_device_record_free (dev);
  return NULL;
}

static E2eeBuddyRecord *
parse_buddy (JsonObject *o, const char *where, gboolean sealed, GError **error)
{
  E2eeBuddyRecord *buddy = NULL;
  JsonArray *devices;
  const char *name, *policy;
  E2eePolicy pol;
  gboolean key_changed, had_encrypted;
  g_autofree char *bwhere = NULL;

  if (!check_members (o, buddy_members, where, error)
      || !get_string (o, "name", where, &name, error))
    return NULL;
  bwhere = g_strdup_printf ("%s (\"%s\")", where, name);
  if (!get_string (o, "policy", bwhere, &policy, error)
      || !get_bool (o, "key_changed", bwhere, &key_changed, error)
      || !get_bool (o, "had_encrypted", bwhere, &had_encrypted, error))
    return NULL;
  if (!e2ee_policy_from_string (policy, &pol))
    {
      corrupt (error, bwhere, "unknown policy \"%s\"", policy);
      return NULL;
    }
  devices = get_array (o, "devices", bwhere, error);
  if (devices == NULL)
    return NULL;

  buddy = buddy_record_new (name);
  buddy->policy = pol;
  buddy->key_changed = key_changed;
  buddy->had_encrypted = had_encrypted;
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      g_autofree char *dwhere = g_strdup_printf ("%s.devices[%u]", bwhere, i);
      JsonObject *dobj = array_object (devices, i, dwhere, error);
      E2eeDeviceRecord *dev;

      if (dobj == NULL)
        goto fail;
      dev = parse_device (dobj, dwhere, sealed, error);
      if (dev == NULL)
        goto fail;
      if (e2ee_buddy_find_device (buddy, dev->key) != NULL)
        {
          e2ee_device_record_free (dev);
          corrupt (error, dwhere, "duplicate device");
          goto fail;
        }
      g_ptr_array_add (buddy->devices, dev);
    }
  return buddy;

fail:
  buddy_record_free (buddy);
  return NULL;
}

static E2eeAccountRecord *
parse_account (JsonObject *o, const char *where, gboolean sealed, GError **error)
{
  E2eeAccountRecord *account = NULL;
  g_autoptr (E2eeKey) identity = NULL;
  JsonObject *jwk;
  JsonArray *buddies;
  const char *protocol, *name;
  gint64 counter;
  g_autofree char *awhere = NULL;

  if (!check_members (o, account_members, where, error)
      || !get_string (o, "protocol", where, &protocol, error)
      || !get_string (o, "name", where, &name, error))
    return NULL;
  awhere = g_strdup_printf ("%s (%s \"%s\")", where, protocol, name);
  jwk = get_object (o, "identity", awhere, error);
  if (jwk == NULL)
    return NULL;
  /* A protected file keeps only the public half here; the scalar is in
   * the sealed part and joined to it after decryption. */
  identity = parse_key (jwk, sealed ? E2EE_KEY_EXPECT_PUBLIC : E2EE_KEY_EXPECT_PRIVATE,
                        awhere, error);
  if (identity == NULL
      || !get_int (o, "last_counter", awhere, 0, JSON_SAFE_MAX, &counter, error))
    return NULL;
  buddies = get_array (o, "buddies", awhere, error);
  if (buddies == NULL)
    return NULL;

  account = account_record_new (protocol, name, identity);
  account->last_counter = (guint64) counter;
  for (guint i = 0; i < json_array_get_length (buddies); i++)
    {
      g_autofree char *bwhere = g_strdup_printf ("%s.buddies[%u]", awhere, i);
      JsonObject *bobj = array_object (buddies, i, bwhere, error);
      E2eeBuddyRecord *buddy;

      if (bobj == NULL)
        goto fail;
      buddy = parse_buddy (bobj, bwhere, sealed, error);
      if (buddy == NULL)
        goto fail;
      if (g_hash_table_contains (account->buddies, buddy->name))
        {
          corrupt (error, bwhere, "duplicate buddy \"%s\"", buddy->name);
          buddy_record_free (buddy);
          goto fail;
        }
      g_hash_table_insert (account->buddies, buddy->name, buddy);
    }
  return account;

fail:
  account_record_free (account);
  return NULL;
}

typedef struct {
  char *kdf;
  gint64 t, m, p;
  guint8 salt[SEAL_SALT_LEN];
  guint8 check[SEAL_CHECK_LEN];
  guint8 iv[E2EE_AEAD_IV_LEN];
  guint8 *ct;                   /* ciphertext || tag */
  gsize ct_len;
} Sealed;

static void
sealed_clear (Sealed *s)
{
  g_free (s->kdf);
  g_free (s->ct);
  memset (s, 0, sizeof *s);
}

static gboolean
parse_sealed (JsonObject *root, Sealed *s, GError **error)
{
  const char *where = "sealed";
  JsonObject *o = get_object (root, "sealed", "document", error);
  const char *kdf, *ct;
  gsize ct_len = 0;

  if (o == NULL || !check_members (o, sealed_members, where, error)
      || !get_string (o, "kdf", where, &kdf, error))
    return FALSE;
  if (!kdf_name_supported (kdf))
    return corrupt (error, where, "unsupported KDF \"%s\"", kdf);
  if (!get_int (o, "t", where, 1, KDF_M_MAX, &s->t, error)
      || !get_int (o, "m", where, 1, KDF_M_MAX, &s->m, error)
      || !get_int (o, "p", where, 1, KDF_M_MAX, &s->p, error))
    return FALSE;
  if (!kdf_params_valid (kdf, s->t, s->m, s->p))
    return corrupt (error, where, "KDF parameters out of range");
  if (!get_b64 (o, "salt", where, s->salt, SEAL_SALT_LEN, error)
      || !get_b64 (o, "check", where, s->check, SEAL_CHECK_LEN, error)
      || !get_b64 (o, "iv", where, s->iv, E2EE_AEAD_IV_LEN, error)
      || !get_string (o, "ct", where, &ct, error))
    return FALSE;
  s->ct = e2ee_b64url_decode (ct, strlen (ct), &ct_len, NULL);
  if (s->ct == NULL || ct_len < E2EE_AEAD_TAG_LEN + 2)
    return corrupt (error, where, "\"ct\" is not base64url of a sealed object");
  s->ct_len = ct_len;
  s->kdf = g_strdup (kdf);
  return TRUE;
}

/* Puts the sealed secrets back into the records. */
static gboolean
apply_secrets (E2eeKeyring *keyring, JsonObject *root, JsonObject *doc_root,
               GError **error)
{
  JsonArray *accounts, *doc_accounts;

  if (!check_members (root, secrets_members, "sealed secrets", error))
    return FALSE;
  accounts = get_array (root, "accounts", "sealed secrets", error);
  doc_accounts = json_object_get_array_member (doc_root, "accounts");
  if (accounts == NULL)
    return FALSE;
  if (json_array_get_length (accounts) != keyring->accounts->len)
    return corrupt (error, "sealed secrets", "account count does not match");

  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      g_autofree char *where = g_strdup_printf ("sealed secrets.accounts[%u]", a);
      JsonObject *so = array_object (accounts, a, where, error);
      JsonObject *pub = json_array_get_object_element (doc_accounts, a);
      JsonArray *derived;
      const char *protocol, *name, *d;
      g_autoptr (JsonObject) full = NULL;
      g_autoptr (GList) members = NULL;
      JsonObject *pub_jwk;
      E2eeKey *identity;

      if (so == NULL || !check_members (so, secret_account_members, where, error)
          || !get_string (so, "protocol", where, &protocol, error)
          || !get_string (so, "name", where, &name, error)
          || !get_string (so, "d", where, &d, error))
        return FALSE;
      if (strcmp (protocol, account->protocol) != 0 || strcmp (name, account->name) != 0)
        return corrupt (error, where, "account does not match");

      /* The public JWK from the document plus "d": the JWK parser then
       * checks that the scalar belongs to the stored point. */
      pub_jwk = json_object_get_object_member (pub, "identity");
      full = json_object_new ();
      members = json_object_get_members (pub_jwk);
      for (GList *l = members; l != NULL; l = l->next)
        json_object_set_member (full, l->data,
                                json_node_copy (json_object_get_member (pub_jwk, l->data)));
      json_object_set_string_member (full, "d", d);
      identity = parse_key (full, E2EE_KEY_EXPECT_PRIVATE, where, error);
      wipe_json_object (full);
      if (identity == NULL)
        return FALSE;
      e2ee_key_unref (account->identity);
      account->identity = identity;

      derived = get_array (so, "derived", where, error);
      if (derived == NULL)
        return FALSE;
      for (guint i = 0; i < json_array_get_length (derived); i++)
        {
          g_autofree char *dwhere = g_strdup_printf ("%s.derived[%u]", where, i);
          JsonObject *dobj = array_object (derived, i, dwhere, error);
          const char *buddy_name, *kid;
          E2eeBuddyRecord *buddy;
          E2eeDeviceRecord *dev;

          if (dobj == NULL || !check_members (dobj, secret_derived_members, dwhere, error)
              || !get_string (dobj, "buddy", dwhere, &buddy_name, error)
              || !get_string (dobj, "kid", dwhere, &kid, error))
            return FALSE;
          buddy = g_hash_table_lookup (account->buddies, buddy_name);
          dev = buddy != NULL ? e2ee_buddy_find_device_by_kid (buddy, kid) : NULL;
          if (dev == NULL)
            return corrupt (error, dwhere, "no such device");
          if (dev->have_keys)
            return corrupt (error, dwhere, "duplicate derived keys");
          if (!parse_derived (dobj, dwhere, dev, error))
            return FALSE;
        }
    }
  return TRUE;
}

static gboolean
unseal (E2eeKeyring *keyring, JsonObject *doc_root, Sealed *s,
        const char *passphrase, GError **error)
{
  g_autoptr (GByteArray) aad = NULL;
  g_autoptr (E2eeAead) aead = NULL;
  guint8 *seal_key = e2ee_secret_alloc (E2EE_AEAD_KEY_LEN);
  guint8 check[SEAL_CHECK_LEN];
  gsize len = s->ct_len - E2EE_AEAD_TAG_LEN;
  guint8 *plain = e2ee_secret_alloc (len + 1);
  JsonNode *root;
  gboolean ok = FALSE;

  if (passphrase == NULL || *passphrase == '\0')
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                   "keyring %s is protected by a passphrase", keyring->path);
      goto out;
    }
  if (!derive_seal_keys (s->kdf, (guint32) s->t, (guint32) s->m, (guint32) s->p,
                         passphrase, s->salt, seal_key, check, error))
    goto out;
  if (!e2ee_ct_equal (check, s->check, SEAL_CHECK_LEN))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                   "wrong passphrase for keyring %s", keyring->path);
      goto out;
    }

  aad = keyring_aad (keyring);
  aead = e2ee_aead_new (seal_key, error);
  if (aead == NULL)
    goto out;
  if (!e2ee_aead_open (aead, s->iv, aad->data, aad->len, s->ct, len,
                       s->ct + len, plain, NULL))
    {
      corrupt (error, "sealed", "the protected part does not match the file "
               "(it was modified)");
      goto out;
    }

  root = parse_json ((const char *) plain, len, NULL);
  if (root == NULL)
    {
      corrupt (error, "sealed", "the protected part is not a JSON object");
      goto out;
    }
  ok = apply_secrets (keyring, json_node_get_object (root), doc_root, error);
  wipe_json_node (root);
  json_node_unref (root);
  if (!ok)
    goto out;

  keyring->protected = TRUE;
  keyring->kdf = g_strdup (s->kdf);
  keyring->kdf_t = (guint32) s->t;
  keyring->kdf_m = (guint32) s->m;
  keyring->kdf_p = (guint32) s->p;
  memcpy (keyring->salt, s->salt, SEAL_SALT_LEN);
  memcpy (keyring->check, s->check, SEAL_CHECK_LEN);
  keyring->seal_key = seal_key;
  seal_key = NULL;

out:
  e2ee_secret_free (seal_key, E2EE_AEAD_KEY_LEN);
  e2ee_secret_free (plain, len + 1);
  e2ee_wipe (check, sizeof check);
  return ok;
}

/* Parses a whole file.  With @check_only, a protected file is checked
 * for structure but not decrypted (used before a save replaces it). */
static E2eeKeyring *
keyring_parse (const char *path, const char *data, gsize len, const char *passphrase,
               gboolean check_only, GError **error)
{
  E2eeKeyring *keyring = NULL;
  JsonNode *node = NULL;
  JsonObject *root;
  JsonArray *accounts;
  const char *format;
  gint64 version;
  gboolean sealed;
  Sealed s = { 0 };

  node = parse_json (data, len, error);
  if (node == NULL)
    goto out;
  root = json_node_get_object (node);

  if (!get_string (root, "format", "document", &format, error))
    goto out;
  if (strcmp (format, KEYRING_FORMAT) != 0)
    {
      corrupt (error, "document", "not a purple-e2ee keyring (format \"%s\")", format);
      goto out;
    }
  if (!get_int (root, "version", "document", 1, G_MAXINT64, &version, error))
    goto out;
  if (version > E2EE_KEYRING_FORMAT_VERSION)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_VERSION,
                   "keyring %s was written by a newer version (format %" G_GINT64_FORMAT
                   ", this one reads %d)", path, version, E2EE_KEYRING_FORMAT_VERSION);
      goto out;
    }
  if (!check_members (root, root_members, "document", error))
    goto out;
  sealed = json_object_has_member (root, "sealed");
  if (sealed && !parse_sealed (root, &s, error))
    goto out;
  accounts = get_array (root, "accounts", "document", error);
  if (accounts == NULL)
    goto out;

  keyring = e2ee_keyring_new (path);
  for (guint i = 0; i < json_array_get_length (accounts); i++)
    {
      g_autofree char *where = g_strdup_printf ("accounts[%u]", i);
      JsonObject *aobj = array_object (accounts, i, where, error);
      E2eeAccountRecord *account;

      if (aobj == NULL)
        goto fail;
      account = parse_account (aobj, where, sealed, error);
      if (account == NULL)
        goto fail;
      if (e2ee_keyring_lookup_account (keyring, account->protocol, account->name) != NULL)
        {
          corrupt (error, where, "duplicate account");
          account_record_free (account);
          goto fail;
        }
      g_ptr_array_add (keyring->accounts, account);
    }

  if (sealed && !check_only && !unseal (keyring, root, &s, passphrase, error))
    goto fail;
  goto out;

fail:
  g_clear_pointer (&keyring, e2ee_keyring_free);
out:
  if (node != NULL)
    {
      wipe_json_node (node);
      json_node_unref (node);
    }
  sealed_clear (&s);
  return keyring;
}

/* ------------------------------------------------------------------ */
/* Files and locks */

static gboolean
io_error (GError **error, int errsv, const char *what, const char *path)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
               "keyring: cannot %s %s: %s", what, path, g_strerror (errsv));
  return FALSE;
}

/* Takes flock(@operation) on path.lock, waiting at most
 * E2EE_KEYRING_LOCK_TIMEOUT_MS.  Returns the descriptor (-1 with
 * @optional when the lock file cannot be opened at all, e.g. a read-only
 * folder: nobody can write there either). */
static gboolean
lock_acquire (const char *path, int operation, gboolean optional, int *out_fd,
              GError **error)
{
  g_autofree char *lock_path = g_strconcat (path, ".lock", NULL);
  gint64 deadline;
  int fd;

  *out_fd = -1;
  fd = open (lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && optional)
    fd = open (lock_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (optional)
        return TRUE;
      return io_error (error, errno, "open the lock file", lock_path);
    }

  deadline = g_get_monotonic_time () + E2EE_KEYRING_LOCK_TIMEOUT_MS * G_GINT64_CONSTANT (1000);
  for (;;)
    {
      int errsv;

      if (flock (fd, operation | LOCK_NB) == 0)
        break;
      errsv = errno;
      if (errsv == EINTR)
        continue;
      if (errsv != EWOULDBLOCK)
        {
          close (fd);
          return io_error (error, errsv, "lock", lock_path);
        }
      if (g_get_monotonic_time () >= deadline)
        {
          close (fd);
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LOCKED,
                       "keyring %s is locked by another program", path);
          return FALSE;
        }
      g_usleep (20 * 1000);
    }
  *out_fd = fd;
  return TRUE;
}

static void
lock_release (int fd)
{
  if (fd >= 0)
    close (fd);                 /* closing drops the flock */
}

/* Reads a keyring file into a buffer to free with e2ee_secret_free().
 * *@missing is set (and TRUE returned) when there is no such file. */
static gboolean
read_file (const char *path, gboolean check_mode, char **out, gsize *out_len,
           gboolean *missing, GError **error)
{
  struct stat st;
  char *buf = NULL;
  gsize size, done = 0;
  int fd, errsv;

  *out = NULL;
  *out_len = 0;
  *missing = FALSE;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      errsv = errno;
      if (errsv == ENOENT)
        {
          *missing = TRUE;
          return TRUE;
        }
      return io_error (error, errsv, "open", path);
    }
  if (fstat (fd, &st) != 0)
    {
      errsv = errno;
      close (fd);
      return io_error (error, errsv, "stat", path);
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring: %s is not a regular file", path);
      return FALSE;
    }
  if (check_mode && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      close (fd);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_PERMISSIONS,
                   "keyring %s can be accessed by other users (mode %04o); "
                   "make it private with: chmod 600", path,
                   (unsigned) (st.st_mode & 07777));
      return FALSE;
    }
  if ((guint64) st.st_size > E2EE_KEYRING_MAX_BYTES)
    {
      close (fd);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_LIMIT,
                   "keyring %s is larger than %u bytes", path, E2EE_KEYRING_MAX_BYTES);
      return FALSE;
    }

  size = (gsize) st.st_size;
  buf = (char *) e2ee_secret_alloc (size + 2);
  /* One byte more than expected tells a file that grew meanwhile. */
  while (done < size + 1)
    {
      ssize_t n = read (fd, buf + done, size + 1 - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          errsv = errno;
          close (fd);
          e2ee_secret_free (buf, size + 2);
          return io_error (error, errsv, "read", path);
        }
      if (n == 0)
        break;
      done += (gsize) n;
    }
  close (fd);
  if (done != size)
    {
      e2ee_secret_free (buf, size + 2);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring: %s changed while being read", path);
      return FALSE;
    }
  buf[size] = '\0';
  *out = buf;
  *out_len = size;
  return TRUE;
}

static char *
backup_path (const char *path)
{
  return g_strconcat (path, "~", NULL);
}

/* Reads @path, or its backup when @path is missing (a save interrupted
 * between making the backup and the rename). */
static gboolean
read_file_or_backup (const char *path, gboolean check_mode, char **out,
                     gsize *out_len, gboolean *missing, GError **error)
{
  g_autofree char *backup = NULL;

  if (!read_file (path, check_mode, out, out_len, missing, error))
    return FALSE;
  if (!*missing)
    return TRUE;
  backup = backup_path (path);
  return read_file (backup, check_mode, out, out_len, missing, error);
}

E2eeKeyring *
e2ee_keyring_load (const char *path, const char *passphrase, GError **error)
{
  E2eeKeyring *keyring = NULL;
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE;
  int lock_fd = -1;

  g_return_val_if_fail (path != NULL && *path != '\0', NULL);

  if (!lock_acquire (path, LOCK_SH, TRUE, &lock_fd, error))
    return NULL;
  if (!read_file_or_backup (path, TRUE, &data, &len, &missing, error))
    goto out;
  if (missing)
    keyring = e2ee_keyring_new (path);
  else
    keyring = keyring_parse (path, data, len, passphrase, FALSE, error);

out:
  lock_release (lock_fd);
  e2ee_secret_free (data, len + 2);
  return keyring;
}

gboolean
e2ee_keyring_file_is_protected (const char *path)
{
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE, result = FALSE;
  JsonNode *root;
  int lock_fd = -1;

  g_return_val_if_fail (path != NULL, FALSE);
  if (!lock_acquire (path, LOCK_SH, TRUE, &lock_fd, NULL))
    return FALSE;
  if (!read_file_or_backup (path, FALSE, &data, &len, &missing, NULL) || missing)
    goto out;
  root = parse_json (data, len, NULL);
  if (root != NULL)
    {
      JsonNode *sealed = json_object_get_member (json_node_get_object (root), "sealed");
      result = sealed != NULL && JSON_NODE_HOLDS_OBJECT (sealed);
      wipe_json_node (root);
      json_node_unref (root);
    }

out:
  lock_release (lock_fd);
  e2ee_secret_free (data, len + 2);
  return result;
}

static gboolean
write_all (int fd, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return FALSE;
      if (n == 0)
        {
          errno = EIO;
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Creates a private temporary file next to @path holding @data, synced.
 * Returns its name, or NULL (nothing left behind). */
static char *
write_temp (const char *path, const char *data, gsize len, GError **error)
{
  char *tmp = g_strconcat (path, ".tmp-XXXXXX", NULL);
  int fd, errsv;

  /* g_mkstemp_full adds O_CREAT | O_EXCL; the 0600 mode is given at
   * creation, so the file is never readable by others, whatever the
   * umask. */
  fd = g_mkstemp_full (tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      errsv = errno;
      io_error (error, errsv, "create a temporary file for", path);
      g_free (tmp);
      return NULL;
    }
  if (!write_all (fd, data, len) || fsync (fd) != 0)
    {
      errsv = errno;
      close (fd);
      goto fail;
    }
  if (close (fd) != 0)
    {
      errsv = errno;
      goto fail;
    }
  return tmp;

fail:
  unlink (tmp);
  io_error (error, errsv, "write", tmp);
  g_free (tmp);
  return NULL;
}

/* Keeps the current file as path~.  A hard link costs nothing and is
 * atomic; where links are not supported the file is copied. */
static gboolean
make_backup (const char *path, GError **error)
{
  g_autofree char *backup = backup_path (path);
  g_autofree char *tmp = NULL;
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE, ok;
  int errsv;

  if (unlink (backup) != 0 && errno != ENOENT)
    return io_error (error, errno, "remove the old backup", backup);
  if (link (path, backup) == 0)
    return TRUE;
  errsv = errno;
  if (errsv != EPERM && errsv != EOPNOTSUPP && errsv != EMLINK && errsv != ENOSYS)
    return io_error (error, errsv, "make the backup", backup);

  if (!read_file (path, FALSE, &data, &len, &missing, error))
    return FALSE;
  ok = FALSE;
  tmp = write_temp (backup, data, len, error);
  if (tmp != NULL)
    {
      if (rename (tmp, backup) == 0)
        ok = TRUE;
      else
        {
          errsv = errno;
          unlink (tmp);
          io_error (error, errsv, "make the backup", backup);
        }
    }
  e2ee_secret_free (data, len + 2);
  return ok;
}

static void
sync_folder (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return;
  /* The rename is done; a folder that cannot be synced (some network
   * file systems) does not undo it, so this is best effort. */
  (void) fsync (fd);
  close (fd);
}

/* Refuses to replace a file this version cannot read (corrupt, newer,
 * shared with others): its keys would be lost.  The caller may not even
 * have loaded it (a failed load followed by a fresh keyring). */
static gboolean
check_replaceable (const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  E2eeKeyring *existing;
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE;

  if (!read_file (path, TRUE, &data, &len, &missing, &local))
    goto refuse;
  if (missing)
    return TRUE;
  existing = keyring_parse (path, data, len, NULL, TRUE, &local);
  e2ee_secret_free (data, len + 2);
  if (existing != NULL)
    {
      e2ee_keyring_free (existing);
      return TRUE;
    }

refuse:
  if (local->code == E2EE_ERROR_KEYRING_IO)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_set_error (error, E2EE_ERROR, local->code,
               "refusing to replace a keyring that cannot be read (move it away "
               "first): %s", local->message);
  return FALSE;
}

gboolean
e2ee_keyring_save (E2eeKeyring *keyring, GError **error)
{
  GString *content = NULL;
  char *tmp = NULL;
  struct stat st;
  gboolean ok = FALSE;
  int lock_fd = -1;

  g_return_val_if_fail (keyring != NULL, FALSE);

  content = keyring_serialise (keyring, error);
  if (content == NULL)
    return FALSE;
  if (!lock_acquire (keyring->path, LOCK_EX, FALSE, &lock_fd, error))
    goto out;
  if (!check_replaceable (keyring->path, error))
    goto out;

  tmp = write_temp (keyring->path, content->str, content->len, error);
  if (tmp == NULL)
    goto out;
  if (lstat (keyring->path, &st) == 0 && !make_backup (keyring->path, error))
    goto out;
  if (rename (tmp, keyring->path) != 0)
    {
      io_error (error, errno, "replace", keyring->path);
      goto out;
    }
  g_clear_pointer (&tmp, g_free);
  sync_folder (keyring->path);
  ok = TRUE;

out:
  if (tmp != NULL)
    {
      unlink (tmp);
      g_free (tmp);
    }
  lock_release (lock_fd);
  e2ee_gstring_free (content);
  return ok;
}
