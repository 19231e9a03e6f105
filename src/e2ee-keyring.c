/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-aead.h"
#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
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

/* The file as this keyring last loaded or saved it (check_replaceable). */
typedef struct
{
  gboolean known;
  gboolean racy;                /* recorded within a timestamp tick of a change */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
  guint32 crc;                  /* of the contents, when racy */
} DiskState;

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

  DiskState disk;
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

/* Index of @text in @names, or -1. */
static gint
name_index (const char *const *names, guint n, const char *text)
{
  for (guint i = 0; text != NULL && i < n; i++)
    if (strcmp (text, names[i]) == 0)
      return (gint) i;
  return -1;
}

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
  gint i = name_index (trust_names, G_N_ELEMENTS (trust_names), text);

  g_return_val_if_fail (out != NULL, FALSE);
  if (i < 0)
    return FALSE;
  *out = (E2eeTrust) i;
  return TRUE;
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
  gint i = name_index (policy_names, G_N_ELEMENTS (policy_names), text);

  g_return_val_if_fail (out != NULL, FALSE);
  if (i < 0)
    return FALSE;
  *out = (E2eePolicy) i;
  return TRUE;
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

E2eeAccountRecord *
e2ee_account_record_new (const char *protocol, const char *name, E2eeKey *identity)
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

void
e2ee_account_record_free (E2eeAccountRecord *account)
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
  keyring->accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_account_record_free);
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

  account = e2ee_account_record_new (protocol, name, identity);
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
/* Where an error is: rendered only when there is one, so that loading
 * a large file does not format a path string for every record. */

typedef struct _Where Where;
struct _Where
{
  const Where *up;
  const char *text;             /* "accounts", "buddies", "document", ... */
  gint index;                   /* [index], or -1 */
  const char *protocol;         /* account: (protocol "name") */
  const char *name;             /* buddy: ("name") */
};

static void
where_render (const Where *w, GString *out)
{
  if (w->up != NULL)
    {
      where_render (w->up, out);
      g_string_append_c (out, '.');
    }
  g_string_append (out, w->text);
  if (w->index >= 0)
    g_string_append_printf (out, "[%d]", w->index);
  if (w->protocol != NULL)
    g_string_append_printf (out, " (%s \"%s\")", w->protocol, w->name);
  else if (w->name != NULL)
    g_string_append_printf (out, " (\"%s\")", w->name);
}

static gboolean G_GNUC_PRINTF (3, 4)
corrupt (GError **error, const Where *where, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;
  g_autoptr (GString) at = g_string_new (NULL);

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  where_render (where, at);
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_CORRUPT,
               "keyring is corrupt: %s: %s", at->str, msg);
  return FALSE;
}

static const Where where_document = { NULL, "document", -1, NULL, NULL };
static const Where where_sealed = { NULL, "sealed", -1, NULL, NULL };
static const Where where_secrets = { NULL, "sealed secrets", -1, NULL, NULL };

/* ------------------------------------------------------------------ */
/* A strict JSON reader, in one pass over the file.
 *
 * RFC 8259 exactly, plus what json-glib lacks (the rules of
 * e2ee_json_parse_strict and more): one top-level object and nothing
 * after it but whitespace; no comments, single quotes, BOM or other
 * extensions; a member name at most once per object and never with an
 * escape sequence (so "x" and "\u0078" cannot both be "x"); nesting at
 * most E2EE_JSON_MAX_DEPTH deep; strings valid UTF-8, without raw
 * control characters, lone surrogates or \u0000 (json-glib would cut the
 * string there); integers without leading zeros and of at most 16 digits
 * (the keyring's integers stay below 2^53, and no digit run may be long
 * enough to wrap around).
 *
 * The tree is small nodes from an arena; strings are decoded in place in
 * the caller's buffer (never longer than their escaped form) and
 * NUL-terminated there, so nothing secret is copied and wiping the buffer
 * wipes every string.  The buffer must have a NUL byte at text[len].
 *
 * For the keyring file the buddies arrays (nearly all of a large file)
 * are not kept as trees: each element is turned into a record as soon as
 * it is read, and its nodes are reused for the next one (see
 * jv_stream_buddies), so the tree stays small whatever the file size. */

typedef enum {
  JV_NULL,
  JV_BOOL,
  JV_INT,
  JV_DOUBLE,
  JV_STRING,
  JV_ARRAY,
  JV_OBJECT,
  JV_STREAMED,                  /* a buddies array already read into records */
} JvType;

typedef struct _Jv Jv;
struct _Jv
{
  const char *name;             /* member name inside an object */
  Jv *next;                     /* next member or element */
  union {
    gint64 i;                   /* JV_INT; JV_BOOL 0 or 1 */
    double d;                   /* JV_DOUBLE */
    const char *s;              /* JV_STRING, NUL-terminated */
    Jv *first;                  /* JV_ARRAY, JV_OBJECT */
    GPtrArray *records;         /* JV_STREAMED: E2eeBuddyRecord* */
  } u;
  guint32 len;                  /* string bytes; members or elements */
  guint8 type;
};

typedef struct _KeyQueue KeyQueue;

#define JV_BLOCK 4096
/* Members beyond which duplicate names are looked up in a hash table. */
#define JV_LINEAR_MEMBERS 16

typedef struct
{
  char *text;
  gsize len;
  gsize pos;
  GSList *blocks;               /* Jv[JV_BLOCK] each */
  guint used;                   /* nodes used in blocks->data */
  GSList *spare;                /* blocks given back by jv_rewind */
  const Where *where;
  GError **error;

  /* Streaming of the buddies arrays: enabled by the caller. */
  gboolean stream;
  gboolean in_accounts;         /* inside the root's "accounts" array */
  gint account_index;
  gboolean streamed_derived;    /* a streamed device had "derived" */
  KeyQueue *keys;               /* where streamed devices' keys are made */
  GPtrArray *streamed;          /* the records' arrays, owned */
} JvReader;

static void
jv_reader_clear (JvReader *r)
{
  /* The nodes hold pointers and numbers only; the strings live in (and
   * are wiped with) the caller's buffer. */
  g_slist_free_full (r->blocks, g_free);
  g_slist_free_full (r->spare, g_free);
  r->blocks = NULL;
  r->spare = NULL;
  g_clear_pointer (&r->streamed, g_ptr_array_unref);
}

/* Where the arena stands, to go back to once a streamed element has been
 * turned into a record. */
typedef struct
{
  GSList *block;
  guint used;
} JvMark;

static JvMark
jv_mark (JvReader *r)
{
  JvMark mark = { r->blocks, r->used };
  return mark;
}

static void
jv_rewind (JvReader *r, JvMark mark)
{
  while (r->blocks != mark.block)
    {
      GSList *top = r->blocks;

      r->blocks = top->next;
      top->next = r->spare;
      r->spare = top;
    }
  r->used = mark.used;
}

static Jv *
jv_new (JvReader *r, JvType type)
{
  Jv *node;

  if (r->blocks == NULL || r->used == JV_BLOCK)
    {
      if (r->spare != NULL)
        {
          GSList *block = r->spare;

          r->spare = block->next;
          block->next = r->blocks;
          r->blocks = block;
        }
      else
        r->blocks = g_slist_prepend (r->blocks, g_new (Jv, JV_BLOCK));
      r->used = 0;
    }
  node = (Jv *) r->blocks->data + r->used++;
  node->name = NULL;
  node->next = NULL;
  node->u.i = 0;
  node->len = 0;
  node->type = (guint8) type;
  return node;
}

static gboolean G_GNUC_PRINTF (2, 3)
jv_fail (JvReader *r, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  return corrupt (r->error, r->where, "%s at offset %" G_GSIZE_FORMAT, msg, r->pos);
}

/* Character classes for the scanner, from one table lookup. */
#define CC_SPACE 1              /* JSON whitespace */
#define CC_PLAIN 2              /* printable ASCII but '"' and '\\' */
#define CC_B64 4                /* base64url alphabet */
#define CC_OUT 8                /* written as it is (json-glib also escapes DEL) */

static guint8 char_class[256];
static gint8 b64_digit[256];    /* -1 outside the alphabet */

static void
char_tables_init (void)
{
  static gsize done = 0;
  static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  if (!g_once_init_enter (&done))
    return;
  for (guint c = 0; c < 256; c++)
    {
      char_class[c] = 0;
      b64_digit[c] = -1;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        char_class[c] |= CC_SPACE;
      if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
        char_class[c] |= CC_PLAIN;
      if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
        char_class[c] |= CC_OUT;
    }
  for (guint i = 0; i < 64; i++)
    {
      b64_digit[(guchar) b64[i]] = (gint8) i;
      char_class[(guchar) b64[i]] |= CC_B64;
    }
  g_once_init_leave (&done, 1);
}

static inline void
jv_skip_ws (JvReader *r)
{
  const guchar *t = (const guchar *) r->text;
  gsize pos = r->pos;

  while (char_class[t[pos]] & CC_SPACE)
    pos++;
  r->pos = pos;
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Four hex digits at @t; -1 if they are not. */
static gint32
hex4 (const char *t)
{
  gint32 v = 0;

  for (int i = 0; i < 4; i++)
    {
      int h = hex_value (t[i]);
      if (h < 0)
        return -1;
      v = v << 4 | h;
    }
  return v;
}

/* The string at r->pos (a '"'), decoded in place.  @name: a member name,
 * where escapes are refused. */
static gboolean
jv_string (JvReader *r, gboolean name, const char **out, guint32 *out_len)
{
  guchar *t = (guchar *) r->text;
  gsize start = r->pos + 1, rd = start, wr;
  gboolean high = FALSE;

  /* Fast path: plain ASCII needs no copying and no checks. */
  while (char_class[t[rd]] & CC_PLAIN)
    rd++;
  for (;; rd++)
    {
      guchar c = t[rd];
      if (c == '"' || c == '\\')
        break;
      if (c < 0x20)
        goto control;
      if (c >= 0x80)
        high = TRUE;
    }
  wr = rd;
  if (t[rd] == '\\' && name)
    {
      r->pos = rd;
      return jv_fail (r, "JSON member name uses an escape sequence");
    }
  while (t[rd] != '"')
    {
      guchar c = t[rd];

      if (c < 0x20)
        goto control;
      if (c != '\\')
        {
          high |= c >= 0x80;
          t[wr++] = t[rd++];
          continue;
        }
      r->pos = rd;
      switch (t[rd + 1])
        {
        case '"': t[wr++] = '"'; break;
        case '\\': t[wr++] = '\\'; break;
        case '/': t[wr++] = '/'; break;
        case 'b': t[wr++] = '\b'; break;
        case 'f': t[wr++] = '\f'; break;
        case 'n': t[wr++] = '\n'; break;
        case 'r': t[wr++] = '\r'; break;
        case 't': t[wr++] = '\t'; break;
        case 'u':
          {
            gint32 cp = hex4 ((const char *) t + rd + 2);
            char utf8[8];
            gint n;

            if (cp < 0)
              return jv_fail (r, "bad \\u escape");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
              return jv_fail (r, "lone low surrogate in a string");
            if (cp >= 0xD800 && cp <= 0xDBFF)
              {
                gint32 lo = t[rd + 6] == '\\' && t[rd + 7] == 'u'
                            ? hex4 ((const char *) t + rd + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                  return jv_fail (r, "lone high surrogate in a string");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                rd += 6;
              }
            if (cp == 0)
              return jv_fail (r, "\\u0000 in a string");
            n = g_unichar_to_utf8 ((gunichar) cp, utf8);
            /* wr + n <= rd + 6: in place is safe. */
            memcpy (t + wr, utf8, (gsize) n);
            wr += (gsize) n;
            rd += 6;
            continue;
          }
        default:
          return jv_fail (r, "bad escape sequence in a string");
        }
      rd += 2;
    }
  if (high && !g_utf8_validate_len ((const char *) t + start, wr - start, NULL))
    {
      r->pos = start;
      return jv_fail (r, "string is not valid UTF-8");
    }
  if (wr - start > G_MAXUINT32)
    return jv_fail (r, "string too long");
  t[wr] = '\0';
  *out = (const char *) t + start;
  *out_len = (guint32) (wr - start);
  r->pos = rd + 1;
  return TRUE;

control:
  r->pos = rd;
  if (rd >= r->len)
    return jv_fail (r, "unterminated string");
  return jv_fail (r, "control character 0x%02x in a string", t[rd]);
}

/* A run of digits, at most 16 (json-glib wraps long integers around). */
static gboolean
jv_digits (JvReader *r, guint *count)
{
  *count = 0;
  while (g_ascii_isdigit (r->text[r->pos]))
    {
      if (++*count > 16)
        return jv_fail (r, "number too long");
      r->pos++;
    }
  if (*count == 0)
    return jv_fail (r, "bad number");
  return TRUE;
}

static Jv *
jv_number (JvReader *r)
{
  const char *t = r->text;
  gsize start = r->pos;
  gboolean integer = TRUE;
  guint digits;
  Jv *node;

  if (t[r->pos] == '-')
    r->pos++;
  if (t[r->pos] == '0' && g_ascii_isdigit (t[r->pos + 1]))
    {
      jv_fail (r, "number with a leading zero");
      return NULL;
    }
  if (!jv_digits (r, &digits))
    return NULL;
  if (t[r->pos] == '.')
    {
      integer = FALSE;
      r->pos++;
      if (!jv_digits (r, &digits))
        return NULL;
    }
  if (t[r->pos] == 'e' || t[r->pos] == 'E')
    {
      integer = FALSE;
      r->pos++;
      if (t[r->pos] == '+' || t[r->pos] == '-')
        r->pos++;
      if (!jv_digits (r, &digits))
        return NULL;
    }
  if (integer)
    {
      gint64 v = 0;
      gsize i = start + (t[start] == '-');

      /* At most 16 digits: no overflow. */
      for (; i < r->pos; i++)
        v = v * 10 + (t[i] - '0');
      node = jv_new (r, JV_INT);
      node->u.i = t[start] == '-' ? -v : v;
    }
  else
    {
      node = jv_new (r, JV_DOUBLE);
      node->u.d = g_ascii_strtod (t + start, NULL);
    }
  return node;
}

static Jv *jv_value (JvReader *r, guint depth);
static Jv *jv_get (const Jv *object, const char *name);
static E2eeBuddyRecord *parse_buddy (const Jv *o, const Where *where, gboolean sealed,
                                     KeyQueue *keys, GError **error);
static void buddy_record_free (E2eeBuddyRecord *buddy);

/* The root's members read so far say this is a keyring of a version we
 * read: only then are its buddies read as they come (a file of another
 * version must be reported as such, not as corrupt). */
static gboolean
jv_stream_allowed (const Jv *root)
{
  const Jv *format = jv_get (root, "format");
  const Jv *version = jv_get (root, "version");

  return format != NULL && format->type == JV_STRING
         && strcmp (format->u.s, KEYRING_FORMAT) == 0
         && version != NULL && version->type == JV_INT && version->u.i >= 1
         && version->u.i <= E2EE_KEYRING_FORMAT_VERSION;
}

/* An account's "buddies" array at r->pos: each element becomes a record
 * (parse_buddy, as if the file were not protected: the "derived" check
 * for protected files is made once the whole file is read) and its nodes
 * are reused.  @account is the account object read so far (for error
 * locations). */
static Jv *
jv_stream_buddies (JvReader *r, guint depth, const Jv *account)
{
  const Jv *protocol = jv_get (account, "protocol");
  const Jv *name = jv_get (account, "name");
  Where awhere = { NULL, "accounts", r->account_index, NULL, NULL };
  Where bwhere = { &awhere, "buddies", 0, NULL, NULL };
  GPtrArray *records;
  Jv *array;

  if (depth >= E2EE_JSON_MAX_DEPTH)
    {
      jv_fail (r, "JSON nested deeper than %u levels", E2EE_JSON_MAX_DEPTH);
      return NULL;
    }
  if (protocol != NULL && protocol->type == JV_STRING && name != NULL
      && name->type == JV_STRING)
    {
      awhere.protocol = protocol->u.s;
      awhere.name = name->u.s;
    }
  records = g_ptr_array_new_with_free_func ((GDestroyNotify) buddy_record_free);
  if (r->streamed == NULL)
    r->streamed = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_ptr_array_add (r->streamed, records);
  array = jv_new (r, JV_STREAMED);
  array->u.records = records;

  r->pos++;
  jv_skip_ws (r);
  if (r->text[r->pos] == ']')
    {
      r->pos++;
      return array;
    }
  for (;;)
    {
      JvMark mark = jv_mark (r);
      E2eeBuddyRecord *buddy;
      Jv *element = jv_value (r, depth + 1);

      if (element == NULL)
        return NULL;
      bwhere.index = (gint) array->len;
      buddy = parse_buddy (element, &bwhere, FALSE, r->keys, r->error);
      if (buddy == NULL)
        return NULL;
      g_ptr_array_add (records, buddy);
      for (guint i = 0; i < buddy->devices->len; i++)
        r->streamed_derived |= ((E2eeDeviceRecord *) buddy->devices->pdata[i])->have_keys;
      jv_rewind (r, mark);
      array->len++;
      jv_skip_ws (r);
      if (r->text[r->pos] == ',')
        {
          r->pos++;
          continue;
        }
      if (r->text[r->pos] == ']')
        {
          r->pos++;
          return array;
        }
      jv_fail (r, "expected ',' or ']'");
      return NULL;
    }
}

static gboolean
jv_name_seen (Jv *object, GHashTable **names, const char *name)
{
  if (object->len < JV_LINEAR_MEMBERS)
    {
      for (Jv *m = object->u.first; m != NULL; m = m->next)
        if (strcmp (m->name, name) == 0)
          return TRUE;
      return FALSE;
    }
  /* Many members (only possible in a crafted file): a table keeps the
   * check linear. */
  if (*names == NULL)
    {
      *names = g_hash_table_new (g_str_hash, g_str_equal);
      for (Jv *m = object->u.first; m != NULL; m = m->next)
        g_hash_table_add (*names, (gpointer) m->name);
    }
  return g_hash_table_contains (*names, name);
}

static Jv *
jv_object (JvReader *r, guint depth)
{
  Jv *object = jv_new (r, JV_OBJECT);
  Jv **tail = &object->u.first;
  GHashTable *names = NULL;

  if (r->in_accounts && depth == 3)
    r->account_index++;

  r->pos++;
  jv_skip_ws (r);
  if (r->text[r->pos] == '}')
    {
      r->pos++;
      return object;
    }
  for (;;)
    {
      const char *name;
      guint32 name_len;
      Jv *value;

      jv_skip_ws (r);
      if (r->text[r->pos] != '"')
        {
          jv_fail (r, "expected a member name");
          goto fail;
        }
      if (!jv_string (r, TRUE, &name, &name_len))
        goto fail;
      if (jv_name_seen (object, &names, name))
        {
          corrupt (r->error, r->where, "JSON member \"%s\" appears twice", name);
          goto fail;
        }
      if (names != NULL)
        g_hash_table_add (names, (gpointer) name);
      jv_skip_ws (r);
      if (r->text[r->pos] != ':')
        {
          jv_fail (r, "expected ':'");
          goto fail;
        }
      r->pos++;
      jv_skip_ws (r);
      if (r->stream && depth == 1 && strcmp (name, "accounts") == 0
          && r->text[r->pos] == '[' && jv_stream_allowed (object))
        {
          /* The account objects are then the elements at depth 3. */
          r->in_accounts = TRUE;
          r->account_index = -1;
          value = jv_value (r, depth);
          r->in_accounts = FALSE;
        }
      else if (r->in_accounts && depth == 3 && strcmp (name, "buddies") == 0
               && r->text[r->pos] == '[')
        value = jv_stream_buddies (r, depth, object);
      else
        value = jv_value (r, depth);
      if (value == NULL)
        goto fail;
      value->name = name;
      *tail = value;
      tail = &value->next;
      object->len++;
      jv_skip_ws (r);
      if (r->text[r->pos] == ',')
        {
          r->pos++;
          continue;
        }
      if (r->text[r->pos] == '}')
        {
          r->pos++;
          break;
        }
      jv_fail (r, "expected ',' or '}'");
      goto fail;
    }
  if (names != NULL)
    g_hash_table_unref (names);
  return object;

fail:
  if (names != NULL)
    g_hash_table_unref (names);
  return NULL;
}

static Jv *
jv_array (JvReader *r, guint depth)
{
  Jv *array = jv_new (r, JV_ARRAY);
  Jv **tail = &array->u.first;

  r->pos++;
  jv_skip_ws (r);
  if (r->text[r->pos] == ']')
    {
      r->pos++;
      return array;
    }
  for (;;)
    {
      Jv *value = jv_value (r, depth);

      if (value == NULL)
        return NULL;
      *tail = value;
      tail = &value->next;
      array->len++;
      jv_skip_ws (r);
      if (r->text[r->pos] == ',')
        {
          r->pos++;
          continue;
        }
      if (r->text[r->pos] == ']')
        {
          r->pos++;
          return array;
        }
      jv_fail (r, "expected ',' or ']'");
      return NULL;
    }
}

static Jv *
jv_literal (JvReader *r, const char *word, JvType type, gint64 value)
{
  gsize n = strlen (word);
  Jv *node;

  /* text[len] is NUL, so the comparison stops at the end. */
  if (strncmp (r->text + r->pos, word, n) != 0)
    {
      jv_fail (r, "unexpected character 0x%02x", (guint8) r->text[r->pos]);
      return NULL;
    }
  r->pos += n;
  node = jv_new (r, type);
  node->u.i = value;
  return node;
}

/* @depth: containers already open around this value. */
static Jv *
jv_value (JvReader *r, guint depth)
{
  char c;

  jv_skip_ws (r);
  c = r->text[r->pos];
  switch (c)
    {
    case '{':
    case '[':
      if (depth >= E2EE_JSON_MAX_DEPTH)
        {
          jv_fail (r, "JSON nested deeper than %u levels", E2EE_JSON_MAX_DEPTH);
          return NULL;
        }
      return c == '{' ? jv_object (r, depth + 1) : jv_array (r, depth + 1);
    case '"':
      {
        Jv *node = jv_new (r, JV_STRING);
        const char *s;
        guint32 n;

        if (!jv_string (r, FALSE, &s, &n))
          return NULL;
        node->u.s = s;
        node->len = n;
        return node;
      }
    case 't':
      return jv_literal (r, "true", JV_BOOL, 1);
    case 'f':
      return jv_literal (r, "false", JV_BOOL, 0);
    case 'n':
      return jv_literal (r, "null", JV_NULL, 0);
    default:
      if (c == '-' || g_ascii_isdigit (c))
        return jv_number (r);
      if (r->pos >= r->len)
        jv_fail (r, "unexpected end of the text");
      else
        jv_fail (r, "unexpected character 0x%02x", (guint8) c);
      return NULL;
    }
}

/* Parses @len bytes at @text (with text[len] == '\0'; modified in place)
 * as one JSON object.  The nodes belong to @r (jv_reader_clear).  With
 * @stream, a keyring's buddies arrays are read into records as they come
 * (JV_STREAMED nodes), their devices' keys made by @keys if not NULL. */
static Jv *
jv_parse (JvReader *r, char *text, gsize len, gboolean stream, KeyQueue *keys,
          const Where *where, GError **error)
{
  Jv *root;

  g_assert (text[len] == '\0');
  char_tables_init ();
  memset (r, 0, sizeof *r);
  r->text = text;
  r->len = len;
  r->where = where;
  r->error = error;
  r->stream = stream;
  r->keys = keys;
  jv_skip_ws (r);
  if (text[r->pos] != '{')
    {
      corrupt (error, where, "not a JSON object");
      return NULL;
    }
  root = jv_value (r, 0);
  if (root == NULL)
    return NULL;
  jv_skip_ws (r);
  if (r->pos != len)
    {
      jv_fail (r, "data after the end of the JSON object");
      return NULL;
    }
  return root;
}

/* ---- access ---- */

static Jv *
jv_get (const Jv *object, const char *name)
{
  for (Jv *m = object->u.first; m != NULL; m = m->next)
    if (m->name[0] == name[0] && strcmp (m->name, name) == 0)
      return m;
  return NULL;
}

static gboolean
check_members (const Jv *object, const char *const *allowed, const Where *where,
               GError **error)
{
  for (Jv *m = object->u.first; m != NULL; m = m->next)
    {
      const char *const *a = allowed;

      while (*a != NULL && ((*a)[0] != m->name[0] || strcmp (*a, m->name) != 0))
        a++;
      if (*a == NULL)
        return corrupt (error, where, "unknown member \"%s\"", m->name);
    }
  return TRUE;
}

static Jv *
need_member (const Jv *object, const char *name, const Where *where, GError **error)
{
  Jv *node = jv_get (object, name);

  if (node == NULL)
    corrupt (error, where, "member \"%s\" is missing", name);
  return node;
}

static gboolean
get_string (const Jv *object, const char *name, const Where *where,
            const char **out, GError **error)
{
  Jv *node = need_member (object, name, where, error);

  if (node == NULL)
    return FALSE;
  if (node->type != JV_STRING)
    return corrupt (error, where, "\"%s\" is not a string", name);
  if (node->len == 0)
    return corrupt (error, where, "\"%s\" is empty", name);
  *out = node->u.s;
  return TRUE;
}

static gboolean
get_int (const Jv *object, const char *name, const Where *where,
         gint64 min, gint64 max, gint64 *out, GError **error)
{
  Jv *node = need_member (object, name, where, error);

  if (node == NULL)
    return FALSE;
  if (node->type != JV_INT)
    return corrupt (error, where, "\"%s\" is not an integer", name);
  if (node->u.i < min || node->u.i > max)
    return corrupt (error, where, "\"%s\" is out of range", name);
  *out = node->u.i;
  return TRUE;
}

static gboolean
get_bool (const Jv *object, const char *name, const Where *where,
          gboolean *out, GError **error)
{
  Jv *node = need_member (object, name, where, error);

  if (node == NULL)
    return FALSE;
  if (node->type != JV_BOOL)
    return corrupt (error, where, "\"%s\" is not a boolean", name);
  *out = node->u.i != 0;
  return TRUE;
}

static Jv *
get_container (const Jv *object, const char *name, JvType type, const Where *where,
               GError **error)
{
  Jv *node = need_member (object, name, where, error);

  if (node == NULL)
    return NULL;
  if (node->type != type)
    {
      corrupt (error, where, "\"%s\" is not an %s", name,
               type == JV_OBJECT ? "object" : "array");
      return NULL;
    }
  return node;
}

static Jv *
get_object (const Jv *object, const char *name, const Where *where, GError **error)
{
  return get_container (object, name, JV_OBJECT, where, error);
}

static Jv *
get_array (const Jv *object, const char *name, const Where *where, GError **error)
{
  return get_container (object, name, JV_ARRAY, where, error);
}

/* Decodes @text_len characters of unpadded base64url into exactly @len
 * bytes at @out, by the rules of e2ee_b64url_decode (alphabet only, no
 * padding, zero trailing bits), without a temporary buffer: the values
 * are secrets and the keys many. */
static gboolean
b64_decode_exact (const char *text, gsize text_len, guint8 *out, gsize len)
{
  const guchar *t = (const guchar *) text;
  gsize i = 0, o = 0, rest;
  guint32 v;

  char_tables_init ();
  if (text_len != e2ee_b64url_encoded_len (len))
    return FALSE;
  for (; i + 4 <= text_len; i += 4)
    {
      if (!(char_class[t[i]] & char_class[t[i + 1]] & char_class[t[i + 2]]
            & char_class[t[i + 3]] & CC_B64))
        goto fail;
      v = (guint32) b64_digit[t[i]] << 18 | (guint32) b64_digit[t[i + 1]] << 12
          | (guint32) b64_digit[t[i + 2]] << 6 | (guint32) b64_digit[t[i + 3]];
      out[o++] = (guint8) (v >> 16);
      out[o++] = (guint8) (v >> 8);
      out[o++] = (guint8) v;
    }
  rest = text_len - i;
  if (rest > 0)
    {
      /* 2 characters give 1 byte (4 bits left over), 3 give 2 (2 bits). */
      v = 0;
      for (gsize k = 0; k < rest; k++)
        {
          if (!(char_class[t[i + k]] & CC_B64))
            goto fail;
          v = v << 6 | (guint32) b64_digit[t[i + k]];
        }
      if (rest == 2)
        {
          if (v & 0xf)
            goto fail;
          out[o++] = (guint8) (v >> 4);
        }
      else
        {
          if (v & 0x3)
            goto fail;
          out[o++] = (guint8) (v >> 10);
          out[o++] = (guint8) (v >> 2);
        }
    }
  g_assert (o == len);
  return TRUE;

fail:
  e2ee_wipe (out, len);
  return FALSE;
}

/* Exactly @len bytes of unpadded base64url, into @out. */
static gboolean
get_b64 (const Jv *object, const char *name, const Where *where,
         guint8 *out, gsize len, GError **error)
{
  const Jv *node = need_member (object, name, where, error);

  if (node == NULL)
    return FALSE;
  if (node->type != JV_STRING)
    return corrupt (error, where, "\"%s\" is not a string", name);
  if (!b64_decode_exact (node->u.s, node->len, out, len))
    return corrupt (error, where, "\"%s\" is not %" G_GSIZE_FORMAT
                    " bytes of base64url", name, len);
  return TRUE;
}

/* json-glib frees its strings without wiping them.  Before a tree that
 * held private keys goes away, overwrite every string value in it (the
 * buffers belong to the tree, so writing through them is safe). */
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

/* A json-glib copy of @v, for the JWK parser (identity keys only: one
 * per account).  Wipe it with wipe_json_node before freeing. */
static JsonNode *
jv_to_json (const Jv *v)
{
  JsonNode *node;

  switch ((JvType) v->type)
    {
    case JV_OBJECT:
      {
        JsonObject *object = json_object_new ();
        for (Jv *m = v->u.first; m != NULL; m = m->next)
          json_object_set_member (object, m->name, jv_to_json (m));
        node = json_node_new (JSON_NODE_OBJECT);
        json_node_take_object (node, object);
        return node;
      }
    case JV_ARRAY:
      {
        JsonArray *array = json_array_new ();
        for (Jv *m = v->u.first; m != NULL; m = m->next)
          json_array_add_element (array, jv_to_json (m));
        node = json_node_new (JSON_NODE_ARRAY);
        json_node_take_array (node, array);
        return node;
      }
    case JV_STRING:
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (node, v->u.s);
      return node;
    case JV_INT:
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_int (node, v->u.i);
      return node;
    case JV_DOUBLE:
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_double (node, v->u.d);
      return node;
    case JV_BOOL:
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_boolean (node, v->u.i != 0);
      return node;
    case JV_NULL:
    case JV_STREAMED:
    default:
      return json_node_new (JSON_NODE_NULL);
    }
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
/* Writing
 *
 * The file is written in the layout json-glib's pretty printer gives
 * with a one-space indent (files stay byte for byte what earlier versions
 * wrote, except that 0x1f in a string is escaped as JSON requires),
 * through a buffer that is handed to the file descriptor in chunks (the
 * whole file is never in memory) or, without one, grows.  It holds
 * secrets: it is wiped after each chunk and when it grows. */

#define OUT_CHUNK (256 * 1024)

typedef struct
{
  GString *buf;
  int fd;                       /* -1: everything stays in buf */
  gcry_md_hd_t crc;             /* CRC-32 of what went to fd, or NULL */
  int errsv;                    /* the first write error */
} Out;

static gboolean write_all (int fd, const char *data, gsize len);

static void
out_flush (Out *out)
{
  if (out->fd < 0 || out->buf->len == 0)
    return;
  if (out->errsv == 0 && !write_all (out->fd, out->buf->str, out->buf->len))
    out->errsv = errno != 0 ? errno : EIO;
  if (out->crc != NULL)
    gcry_md_write (out->crc, out->buf->str, out->buf->len);
  e2ee_wipe (out->buf->str, out->buf->len);
  out->buf->len = 0;
  out->buf->str[0] = '\0';
}

static void
out_reserve (Out *out, gsize extra)
{
  GString *bigger;

  if (out->buf->len + extra < out->buf->allocated_len)
    return;
  out_flush (out);
  if (out->buf->len + extra < out->buf->allocated_len)
    return;
  bigger = g_string_sized_new (MAX (2 * out->buf->allocated_len, out->buf->len + extra + 1));
  g_string_append_len (bigger, out->buf->str, (gssize) out->buf->len);
  e2ee_gstring_free (out->buf);
  out->buf = bigger;
}

/* Room for @extra more bytes (and the NUL); returns where they go. */
static inline char *
out_room (Out *out, gsize extra)
{
  out_reserve (out, extra);
  return out->buf->str + out->buf->len;
}

static inline void
out_commit (GString *out, char *end)
{
  *end = '\0';
  out->len = (gsize) (end - out->str);
}

static void
out_raw (Out *out, const char *text, gsize len)
{
  char *p = out_room (out, len);

  memcpy (p, text, len);
  out_commit (out->buf, p + len);
}

#define OUT_LITERAL(out, text) out_raw ((out), (text), sizeof (text) - 1)

/* A new line indented to @depth, after a ',' unless @first. */
static void
out_line (Out *out, guint depth, gboolean first)
{
  char *p = out_room (out, depth + 2);

  if (!first)
    *p++ = ',';
  *p++ = '\n';
  memset (p, ' ', depth);
  out_commit (out->buf, p + depth);
}

static void
out_close (Out *out, guint depth, char c)
{
  char *p;

  out_line (out, depth, TRUE);
  p = out_room (out, 1);
  *p++ = c;
  out_commit (out->buf, p);
}

static void
out_string (Out *out, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  const guchar *q = (const guchar *) s;
  gsize n = strlen (s);
  char *p = out_room (out, 2 + 6 * n);

  char_tables_init ();
  *p++ = '"';
  while (*q != '\0')
    {
      const guchar *run = q;
      guchar c;

      while (char_class[*q] & CC_OUT)
        q++;
      memcpy (p, run, (gsize) (q - run));
      p += q - run;
      if (*q == '\0')
        break;
      c = *q++;
      *p++ = '\\';
      switch (c)
        {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
          *p++ = 'u';
          *p++ = '0';
          *p++ = '0';
          *p++ = hex[c >> 4];
          *p++ = hex[c & 15];
          break;
        }
    }
  *p++ = '"';
  out_commit (out->buf, p);
}

static void
out_int (Out *out, gint64 v)
{
  char buf[24];
  int i = sizeof buf;
  guint64 u = v < 0 ? (guint64) 0 - (guint64) v : (guint64) v;

  do
    {
      buf[--i] = (char) ('0' + u % 10);
      u /= 10;
    }
  while (u != 0);
  if (v < 0)
    buf[--i] = '-';
  out_raw (out, buf + i, sizeof buf - (gsize) i);
}

/* Unpadded base64url (as e2ee_b64url_encode), straight into the buffer. */
static void
out_b64 (Out *out, const guint8 *data, gsize len)
{
  static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  gsize i = 0;
  char *p;

  p = out_room (out, e2ee_b64url_encoded_len (len) + 2);
  *p++ = '"';
  for (; i + 3 <= len; i += 3)
    {
      guint32 v = (guint32) data[i] << 16 | (guint32) data[i + 1] << 8 | data[i + 2];
      *p++ = alphabet[(v >> 18) & 63];
      *p++ = alphabet[(v >> 12) & 63];
      *p++ = alphabet[(v >> 6) & 63];
      *p++ = alphabet[v & 63];
    }
  if (len - i >= 1)
    {
      guint32 v = (guint32) data[i] << 16 | (len - i == 2 ? (guint32) data[i + 1] << 8 : 0);
      *p++ = alphabet[(v >> 18) & 63];
      *p++ = alphabet[(v >> 12) & 63];
      if (len - i == 2)
        *p++ = alphabet[(v >> 6) & 63];
    }
  *p++ = '"';
  out_commit (out->buf, p);
}

/* "name" : (the value follows), on a new line at @depth. */
static void
out_member (Out *out, guint depth, gboolean first, const char *name)
{
  out_line (out, depth, first);
  out_string (out, name);
  OUT_LITERAL (out, " : ");
}

static void
out_string_member (Out *out, guint depth, gboolean first, const char *name,
                   const char *value)
{
  out_member (out, depth, first, name);
  out_string (out, value);
}

static void
out_int_member (Out *out, guint depth, gboolean first, const char *name, gint64 value)
{
  out_member (out, depth, first, name);
  out_int (out, value);
}

static void
out_bool_member (Out *out, guint depth, gboolean first, const char *name,
                 gboolean value)
{
  out_member (out, depth, first, name);
  if (value)
    OUT_LITERAL (out, "true");
  else
    OUT_LITERAL (out, "false");
}

static void
out_b64_member (Out *out, guint depth, gboolean first, const char *name,
                const guint8 *data, gsize len)
{
  out_member (out, depth, first, name);
  out_b64 (out, data, len);
}

/* A JWK object at @depth (the member name already written), as
 * e2ee_key_to_jwk_object gives it: kty, crv, x, y[, d], kid, e2ee_v. */
static gboolean
out_jwk (Out *out, guint depth, const E2eeKey *key, gboolean with_private)
{
  gboolean first_version = TRUE;
  guint8 caps = e2ee_key_get_caps (key);

  OUT_LITERAL (out, "{");
  out_string_member (out, depth + 1, TRUE, "kty", "EC");
  out_string_member (out, depth + 1, FALSE, "crv", "P-256");
  out_b64_member (out, depth + 1, FALSE, "x", e2ee_key_get_x (key), E2EE_KEY_COORD_LEN);
  out_b64_member (out, depth + 1, FALSE, "y", e2ee_key_get_y (key), E2EE_KEY_COORD_LEN);
  if (with_private)
    {
      /* The scalar is only reachable through the JWK module. */
      g_autoptr (JsonObject) jwk = e2ee_key_to_jwk_object (key, TRUE, FALSE);
      JsonNode *d = json_object_get_member (jwk, "d");
      gboolean ok = d != NULL;

      if (ok)
        out_string_member (out, depth + 1, FALSE, "d", json_node_get_string (d));
      wipe_json_node (d);
      if (!ok)
        return FALSE;
    }
  out_string_member (out, depth + 1, FALSE, "kid", e2ee_key_get_kid (key));
  out_member (out, depth + 1, FALSE, "e2ee_v");
  OUT_LITERAL (out, "[");
  for (guint v = 1; v <= 8; v++)
    if (caps & (1u << (v - 1)))
      {
        out_line (out, depth + 2, first_version);
        out_int (out, v);
        first_version = FALSE;
      }
  if (!first_version)
    out_close (out, depth + 1, ']');
  else
    {
      OUT_LITERAL (out, "]");
    }
  out_close (out, depth, '}');
  return TRUE;
}

static gint
compare_buddies (gconstpointer a, gconstpointer b)
{
  const E2eeBuddyRecord *x = *(E2eeBuddyRecord *const *) a;
  const E2eeBuddyRecord *y = *(E2eeBuddyRecord *const *) b;

  return strcmp (x->name, y->name);
}

/* The account's buddies sorted by name, so that the same keyring always
 * gives the same bytes (and the same sealing AAD). */
static GPtrArray *
sorted_buddies (E2eeAccountRecord *account)
{
  GPtrArray *buddies = g_ptr_array_sized_new (g_hash_table_size (account->buddies));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, account->buddies);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (buddies, value);
  g_ptr_array_sort (buddies, compare_buddies);
  return buddies;
}

/* One sorted buddy list per account, for the writer and the AAD. */
static GPtrArray *
sorted_accounts (E2eeKeyring *keyring)
{
  GPtrArray *lists = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);

  for (guint a = 0; a < keyring->accounts->len; a++)
    g_ptr_array_add (lists, sorted_buddies (g_ptr_array_index (keyring->accounts, a)));
  return lists;
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
          || account->last_counter > (guint64) JSON_SAFE_MAX
          || !g_utf8_validate (account->protocol, -1, NULL)
          || !g_utf8_validate (account->name, -1, NULL))
        goto bad;
      g_hash_table_iter_init (&iter, account->buddies);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          E2eeBuddyRecord *buddy = value;
          if (e2ee_policy_to_string (buddy->policy) == NULL
              || !g_utf8_validate (buddy->name, -1, NULL))
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

/* The derived-key object; @buddy (the sealed form) adds buddy and kid. */
static void
out_derived (Out *out, guint depth, const E2eeDeviceRecord *dev, const char *buddy)
{
  gboolean first = TRUE;

  OUT_LITERAL (out, "{");
  if (buddy != NULL)
    {
      out_string_member (out, depth + 1, TRUE, "buddy", buddy);
      out_string_member (out, depth + 1, FALSE, "kid", e2ee_key_get_kid (dev->key));
      first = FALSE;
    }
  out_int_member (out, depth + 1, first, "local_caps", dev->keys_local_caps);
  out_int_member (out, depth + 1, FALSE, "remote_caps", dev->keys_remote_caps);
  out_b64_member (out, depth + 1, FALSE, "send", dev->k_send, E2EE_KEY_LEN);
  out_b64_member (out, depth + 1, FALSE, "recv", dev->k_recv, E2EE_KEY_LEN);
  out_close (out, depth, '}');
}

static void
out_device (Out *out, guint depth, const E2eeDeviceRecord *dev, gboolean with_secrets)
{
  OUT_LITERAL (out, "{");
  out_member (out, depth + 1, TRUE, "jwk");
  out_jwk (out, depth + 1, dev->key, FALSE);
  out_string_member (out, depth + 1, FALSE, "trust", e2ee_trust_to_string (dev->trust));
  out_int_member (out, depth + 1, FALSE, "first_seen", dev->first_seen);
  out_int_member (out, depth + 1, FALSE, "last_seen", dev->last_seen);
  if (dev->replay_init)
    {
      /* The window is a 64-bit bitmap: above 2^53, so a hex string. */
      static const char hex[] = "0123456789abcdef";
      char window[17];

      for (int i = 0; i < 16; i++)
        window[i] = hex[(dev->replay_window >> (60 - 4 * i)) & 15];
      window[16] = '\0';
      out_member (out, depth + 1, FALSE, "replay");
      OUT_LITERAL (out, "{");
      out_int_member (out, depth + 2, TRUE, "high", (gint64) dev->replay_high);
      out_string_member (out, depth + 2, FALSE, "window", window);
      out_close (out, depth + 1, '}');
    }
  if (with_secrets && dev->have_keys)
    {
      out_member (out, depth + 1, FALSE, "derived");
      out_derived (out, depth + 1, dev, NULL);
    }
  out_close (out, depth, '}');
}

static void
out_buddy (Out *out, guint depth, const E2eeBuddyRecord *buddy, gboolean with_secrets)
{
  OUT_LITERAL (out, "{");
  out_string_member (out, depth + 1, TRUE, "name", buddy->name);
  out_string_member (out, depth + 1, FALSE, "policy", e2ee_policy_to_string (buddy->policy));
  out_bool_member (out, depth + 1, FALSE, "key_changed", buddy->key_changed);
  out_bool_member (out, depth + 1, FALSE, "had_encrypted", buddy->had_encrypted);
  out_member (out, depth + 1, FALSE, "devices");
  if (buddy->devices->len == 0)
    OUT_LITERAL (out, "[]");
  else
    {
      OUT_LITERAL (out, "[");
      for (guint d = 0; d < buddy->devices->len; d++)
        {
          out_line (out, depth + 2, d == 0);
          out_device (out, depth + 2, g_ptr_array_index (buddy->devices, d), with_secrets);
        }
      out_close (out, depth + 1, ']');
    }
  out_close (out, depth, '}');
}

/* The document.  With @sealed the secrets are left out (they go into the
 * sealed part); otherwise they are written in place. */
static gboolean
out_document (Out *out, E2eeKeyring *keyring, GPtrArray *sorted, gboolean sealed)
{
  OUT_LITERAL (out, "{");
  out_string_member (out, 1, TRUE, "format", KEYRING_FORMAT);
  out_int_member (out, 1, FALSE, "version", E2EE_KEYRING_FORMAT_VERSION);
  out_member (out, 1, FALSE, "accounts");
  if (keyring->accounts->len == 0)
    {
      OUT_LITERAL (out, "[]");
      return TRUE;
    }
  OUT_LITERAL (out, "[");
  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      GPtrArray *buddies = g_ptr_array_index (sorted, a);

      out_line (out, 2, a == 0);
      OUT_LITERAL (out, "{");
      out_string_member (out, 3, TRUE, "protocol", account->protocol);
      out_string_member (out, 3, FALSE, "name", account->name);
      out_member (out, 3, FALSE, "identity");
      if (!out_jwk (out, 3, account->identity, !sealed))
        return FALSE;
      out_int_member (out, 3, FALSE, "last_counter", (gint64) account->last_counter);
      out_member (out, 3, FALSE, "buddies");
      if (buddies->len == 0)
        OUT_LITERAL (out, "[]");
      else
        {
          OUT_LITERAL (out, "[");
          for (guint b = 0; b < buddies->len; b++)
            {
              out_line (out, 4, b == 0);
              out_buddy (out, 4, g_ptr_array_index (buddies, b), !sealed);
            }
          out_close (out, 3, ']');
        }
      out_close (out, 2, '}');
    }
  out_close (out, 1, ']');
  return TRUE;
}

/* The sealed part's plaintext: per account the identity scalar and the
 * derived keys of every device that has them. */
static gboolean
out_secrets (Out *out, E2eeKeyring *keyring, GPtrArray *sorted)
{
  OUT_LITERAL (out, "{");
  out_member (out, 1, TRUE, "accounts");
  if (keyring->accounts->len == 0)
    {
      OUT_LITERAL (out, "[]");
      out_close (out, 0, '}');
      return TRUE;
    }
  OUT_LITERAL (out, "[");
  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      GPtrArray *buddies = g_ptr_array_index (sorted, a);
      g_autoptr (JsonObject) jwk = e2ee_key_to_jwk_object (account->identity, TRUE, FALSE);
      JsonNode *d = json_object_get_member (jwk, "d");
      gboolean first_derived = TRUE;

      if (d == NULL)
        return FALSE;
      out_line (out, 2, a == 0);
      OUT_LITERAL (out, "{");
      out_string_member (out, 3, TRUE, "protocol", account->protocol);
      out_string_member (out, 3, FALSE, "name", account->name);
      out_string_member (out, 3, FALSE, "d", json_node_get_string (d));
      wipe_json_node (d);
      out_member (out, 3, FALSE, "derived");
      OUT_LITERAL (out, "[");
      for (guint b = 0; b < buddies->len; b++)
        {
          E2eeBuddyRecord *buddy = g_ptr_array_index (buddies, b);

          for (guint i = 0; i < buddy->devices->len; i++)
            {
              E2eeDeviceRecord *dev = g_ptr_array_index (buddy->devices, i);

              if (!dev->have_keys)
                continue;
              out_line (out, 4, first_derived);
              out_derived (out, 4, dev, buddy->name);
              first_derived = FALSE;
            }
        }
      if (!first_derived)
        out_close (out, 3, ']');
      else
        OUT_LITERAL (out, "]");
      out_close (out, 2, '}');
    }
  out_close (out, 1, ']');
  out_close (out, 0, '}');
  return TRUE;
}

/* The AAD of the sealed part: a length-prefixed binary form of everything
 * the file holds in clear (independent of JSON formatting, so a change of
 * layout cannot make old files unreadable).  Built from records, so load
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
keyring_aad (E2eeKeyring *keyring, GPtrArray *sorted)
{
  GByteArray *b = g_byte_array_new ();

  aad_str (b, KEYRING_FORMAT);
  aad_u64 (b, E2EE_KEYRING_FORMAT_VERSION);
  aad_u64 (b, keyring->accounts->len);
  for (guint a = 0; a < keyring->accounts->len; a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      GPtrArray *buddies = g_ptr_array_index (sorted, a);

      aad_str (b, account->protocol);
      aad_str (b, account->name);
      aad_key (b, account->identity);
      aad_u64 (b, account->last_counter);
      aad_u64 (b, buddies->len);
      for (guint i = 0; i < buddies->len; i++)
        {
          E2eeBuddyRecord *buddy = g_ptr_array_index (buddies, i);

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

/* What the file will take, roughly (the buffer grows, wiping, if not). */
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
seal_secrets (E2eeKeyring *keyring, GPtrArray *sorted, Out *out, GError **error)
{
  g_autoptr (GByteArray) aad = keyring_aad (keyring, sorted);
  g_autoptr (E2eeAead) aead = NULL;
  Out plain = { g_string_sized_new (size_hint (keyring) / 4), -1, NULL, 0 };
  guint8 iv[E2EE_AEAD_IV_LEN];
  guint8 *ct = NULL;
  gboolean ok = FALSE;

  if (!out_secrets (&plain, keyring, sorted))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                   "keyring: cannot export an identity key");
      goto out;
    }
  OUT_LITERAL (&plain, "\n");
  aead = e2ee_aead_new (keyring->seal_key, error);
  if (aead == NULL)
    goto out;
  e2ee_aead_random_iv (iv);
  ct = g_malloc (plain.buf->len + E2EE_AEAD_TAG_LEN);
  if (!e2ee_aead_seal (aead, iv, aad->data, aad->len, (const guint8 *) plain.buf->str,
                       plain.buf->len, ct, ct + plain.buf->len, error))
    goto out;

  out_member (out, 1, FALSE, "sealed");
  OUT_LITERAL (out, "{");
  out_string_member (out, 2, TRUE, "kdf", keyring->kdf);
  out_int_member (out, 2, FALSE, "t", keyring->kdf_t);
  out_int_member (out, 2, FALSE, "m", keyring->kdf_m);
  out_int_member (out, 2, FALSE, "p", keyring->kdf_p);
  out_b64_member (out, 2, FALSE, "salt", keyring->salt, SEAL_SALT_LEN);
  out_b64_member (out, 2, FALSE, "check", keyring->check, SEAL_CHECK_LEN);
  out_b64_member (out, 2, FALSE, "iv", iv, sizeof iv);
  /* ct is the ciphertext followed by the 16-byte tag. */
  out_b64_member (out, 2, FALSE, "ct", ct, plain.buf->len + E2EE_AEAD_TAG_LEN);
  out_close (out, 1, '}');
  ok = TRUE;

out:
  g_free (ct);
  e2ee_gstring_free (plain.buf);
  return ok;
}

/* The whole file into @out (check_save_ranges first). */
static gboolean
keyring_write (E2eeKeyring *keyring, GPtrArray *sorted, Out *out, GError **error)
{
  if (!out_document (out, keyring, sorted, keyring->protected))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FAILED,
                   "keyring: cannot export an identity key");
      return FALSE;
    }
  if (keyring->protected && !seal_secrets (keyring, sorted, out, error))
    return FALSE;
  out_close (out, 0, '}');
  OUT_LITERAL (out, "\n");
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Reading */

/* An identity key, through the JWK module (which checks that "d" belongs
 * to the point).  One per account, so the json-glib copy costs little. */
static E2eeKey *
parse_identity (const Jv *jwk, const char *d, E2eeKeyExpect expect, const Where *where,
                GError **error)
{
  g_autoptr (GError) local = NULL;
  JsonNode *node = jv_to_json (jwk);
  E2eeKey *key;

  if (d != NULL)
    json_object_set_string_member (json_node_get_object (node), "d", d);
  key = e2ee_key_from_jwk_object (json_node_get_object (node), expect, &local);
  wipe_json_node (node);
  json_node_unref (node);
  if (key == NULL)
    corrupt (error, where, "bad key: %s", local->message);
  return key;
}

static gboolean
bad_key (GError **error, const Where *where, const char *message)
{
  return corrupt (error, where, "bad key: %s", message);
}

static gboolean
jwk_coord (const Jv *jwk, const char *name, guint8 out[E2EE_KEY_COORD_LEN],
           const Where *where, GError **error)
{
  const Jv *node = jv_get (jwk, name);

  if (node == NULL || node->type != JV_STRING)
    return corrupt (error, where, "bad key: JWK member \"%s\" is %s", name,
                    node == NULL ? "missing" : "not a string");
  if (!b64_decode_exact (node->u.s, node->len, out, E2EE_KEY_COORD_LEN))
    return corrupt (error, where, "bad key: JWK member \"%s\" is not 32 bytes of "
                    "unpadded base64url", name);
  return TRUE;
}

/* A device key to make: read from the file on the reader's thread, made
 * (validated) on it or on the key thread (see KeyQueue). */
typedef struct
{
  guint8 x[E2EE_KEY_COORD_LEN];
  guint8 y[E2EE_KEY_COORD_LEN];
  guint8 caps;
  const char *kid;              /* in the text buffer */
  E2eeDeviceRecord *dev;        /* gets the key once the whole file is read */
  E2eeKey *key;                 /* the result, or NULL and: */
  char *failure;
  /* Where the device is (for the message; the strings are in the text). */
  gint account, buddy, device;
  const char *protocol, *account_name, *buddy_name;
} KeyJob;

static void
key_job_run (KeyJob *job)
{
  g_autoptr (GError) local = NULL;
  E2eeKey *key = e2ee_key_new_public (job->x, job->y, &local);

  if (key == NULL)
    {
      job->failure = g_strdup (local->message);
      return;
    }
  if (job->caps != e2ee_key_get_caps (key))
    {
      E2eeKey *with_caps = e2ee_key_with_caps (key, job->caps);
      e2ee_key_unref (key);
      key = with_caps;
    }
  if (job->kid != NULL && strcmp (job->kid, e2ee_key_get_kid (key)) != 0)
    {
      job->failure = g_strdup ("JWK \"kid\" is not the key's thumbprint");
      e2ee_key_unref (key);
      return;
    }
  job->key = key;
}

static void
key_job_clear (KeyJob *job)
{
  g_clear_pointer (&job->key, e2ee_key_unref);
  g_clear_pointer (&job->failure, g_free);
}

/* A device's public key, read into @job.  The rules of
 * e2ee_key_from_jwk_object with E2EE_KEY_EXPECT_PUBLIC (kty "EC", crv
 * "P-256", 32-byte x and y, no "d", "e2ee_v" a list of versions including
 * 1, kid the thumbprint; other members ignored), read straight from the
 * tree: building a json-glib object per key would cost more than the
 * rest of the load.  key_job_run then validates the point with
 * e2ee_key_new_public, as for every key, and checks the kid. */
static gboolean
read_device_jwk (const Jv *jwk, const Where *where, KeyJob *job, GError **error)
{
  const Jv *node;

  node = jv_get (jwk, "kty");
  if (node == NULL || node->type != JV_STRING || strcmp (node->u.s, "EC") != 0)
    return bad_key (error, where, "JWK key type must be \"EC\"");
  node = jv_get (jwk, "crv");
  if (node == NULL || node->type != JV_STRING || strcmp (node->u.s, "P-256") != 0)
    return bad_key (error, where, "JWK curve must be \"P-256\"");
  if (!jwk_coord (jwk, "x", job->x, where, error) || !jwk_coord (jwk, "y", job->y, where, error))
    return FALSE;
  if (jv_get (jwk, "d") != NULL)
    return bad_key (error, where, "a private key (\"d\") was given where a public key is expected");
  job->caps = E2EE_CAPS_V1;
  node = jv_get (jwk, "e2ee_v");
  if (node != NULL)
    {
      job->caps = 0;
      if (node->type != JV_ARRAY || node->len == 0 || node->len > 16)
        goto bad_caps;
      for (const Jv *v = node->u.first; v != NULL; v = v->next)
        {
          if (v->type != JV_INT || v->u.i < 1 || v->u.i > 64)
            goto bad_caps;
          /* Versions above 4 are a later peer's business (as in the JWK
           * parser): v1 envelopes carry four capability bits. */
          if (v->u.i <= 4)
            job->caps |= (guint8) (1u << (v->u.i - 1));
        }
      if (!(job->caps & E2EE_CAPS_V1))
        goto bad_caps;
    }
  node = jv_get (jwk, "kid");
  job->kid = NULL;
  if (node != NULL)
    {
      if (node->type != JV_STRING)
        return bad_key (error, where, "JWK \"kid\" is not the key's thumbprint");
      job->kid = node->u.s;
    }
  return TRUE;

bad_caps:
  return bad_key (error, where, "JWK member \"e2ee_v\" must list protocol versions including 1");
}

/* Device keys of a large file are made on a second thread while the
 * reader goes on: validating the points (libgcrypt, under the curve
 * context's lock, which only this thread then takes) and hashing the
 * thumbprints is about half of a load.  The reader hands over a batch of
 * jobs after whole buddies only, and nothing on the key thread touches a
 * record: the keys go into the records once the file is read, so a
 * failure anywhere can free records at once.  The first key that fails,
 * in file order, is the error reported. */
#define KEY_BATCH 256
/* Below this size a thread would cost more than it saves. */
#define KEY_THREAD_MIN_BYTES (1024 * 1024)

struct _KeyQueue
{
  GThread *thread;              /* NULL: jobs run when handed over */
  GAsyncQueue *queue;           /* GArray* of KeyJob, then the queue itself */
  GPtrArray *batches;           /* every batch handed over, in file order */
  GArray *open;                 /* KeyJob, being filled by the reader */
};

static void
key_batch_free (GArray *batch)
{
  for (guint i = 0; i < batch->len; i++)
    key_job_clear (&g_array_index (batch, KeyJob, i));
  g_array_unref (batch);
}

static gpointer
key_thread (gpointer data)
{
  KeyQueue *q = data;

  for (;;)
    {
      gpointer item = g_async_queue_pop (q->queue);
      GArray *batch = item;

      if (item == (gpointer) q)
        break;
      for (guint i = 0; i < batch->len; i++)
        key_job_run (&g_array_index (batch, KeyJob, i));
    }
  return NULL;
}

static KeyQueue *
key_queue_new (void)
{
  KeyQueue *q = g_new0 (KeyQueue, 1);

  q->queue = g_async_queue_new ();
  q->batches = g_ptr_array_new_with_free_func ((GDestroyNotify) key_batch_free);
  q->open = g_array_sized_new (FALSE, TRUE, sizeof (KeyJob), KEY_BATCH + 16);
  q->thread = g_thread_try_new ("e2ee-keyring-keys", key_thread, q, NULL);
  return q;
}

/* Hands the open batch over (at the end of a buddy). */
static void
key_queue_flush (KeyQueue *q)
{
  GArray *batch = q->open;

  if (batch->len == 0)
    return;
  q->open = g_array_sized_new (FALSE, TRUE, sizeof (KeyJob), KEY_BATCH + 16);
  g_ptr_array_add (q->batches, batch);
  if (q->thread != NULL)
    g_async_queue_push (q->queue, batch);
  else
    for (guint i = 0; i < batch->len; i++)
      key_job_run (&g_array_index (batch, KeyJob, i));
}

/* Runs what is left and waits for every job.  (The open batch only ever
 * holds whole buddies: parse_buddy takes back the jobs of one it
 * refuses.) */
static void
key_queue_finish (KeyQueue *q)
{
  key_queue_flush (q);
  if (q->thread != NULL)
    {
      g_async_queue_push (q->queue, q);
      g_thread_join (q->thread);
      q->thread = NULL;
    }
}

static void
key_queue_free (KeyQueue *q)
{
  if (q == NULL)
    return;
  key_queue_finish (q);
  g_ptr_array_unref (q->batches);
  g_array_unref (q->open);
  g_async_queue_unref (q->queue);
  g_free (q);
}

/* After key_queue_finish: the first failure, if any, as the error
 * (replacing one the reader may have set). */
static gboolean
key_queue_failed (KeyQueue *q, GError **error)
{
  for (guint b = 0; b < q->batches->len; b++)
    {
      GArray *batch = g_ptr_array_index (q->batches, b);

      for (guint i = 0; i < batch->len; i++)
        {
          KeyJob *job = &g_array_index (batch, KeyJob, i);
          Where awhere = { NULL, "accounts", job->account, job->protocol, job->account_name };
          Where bwhere = { &awhere, "buddies", job->buddy, NULL, job->buddy_name };
          Where dwhere = { &bwhere, "devices", job->device, NULL, NULL };

          if (job->failure != NULL)
            {
              g_clear_error (error);
              bad_key (error, &dwhere, job->failure);
              return TRUE;
            }
        }
    }
  return FALSE;
}

/* After a whole file was read without failure: the keys into their
 * records. */
static void
key_queue_assign (KeyQueue *q)
{
  for (guint b = 0; b < q->batches->len; b++)
    {
      GArray *batch = g_ptr_array_index (q->batches, b);

      for (guint i = 0; i < batch->len; i++)
        {
          KeyJob *job = &g_array_index (batch, KeyJob, i);
          job->dev->key = g_steal_pointer (&job->key);
        }
    }
}

static gboolean
parse_derived (const Jv *o, const Where *where, E2eeDeviceRecord *dev, GError **error)
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

/* A device.  With @job, its key is left to be made from it (dev->key
 * stays NULL); else it is made here. */
static E2eeDeviceRecord *
parse_device (const Jv *o, const Where *where, gboolean sealed, KeyJob *job,
              GError **error)
{
  E2eeDeviceRecord *dev = g_new0 (E2eeDeviceRecord, 1);
  const Jv *jwk, *sub;
  const char *text;
  gint64 v;
  KeyJob local = { { 0 } };

  if (o->type != JV_OBJECT)
    {
      corrupt (error, where, "element is not an object");
      goto fail;
    }
  if (!check_members (o, device_members, where, error))
    goto fail;
  jwk = get_object (o, "jwk", where, error);
  if (jwk == NULL)
    goto fail;
  if (jv_get (jwk, "kid") == NULL)
    {
      corrupt (error, where, "device key has no kid");
      goto fail;
    }
  if (!read_device_jwk (jwk, where, job != NULL ? job : &local, error))
    goto fail;
  if (job == NULL)
    {
      key_job_run (&local);
      if (local.failure != NULL)
        {
          bad_key (error, where, local.failure);
          key_job_clear (&local);
          goto fail;
        }
      dev->key = g_steal_pointer (&local.key);
    }
  else
    job->dev = dev;

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

  if (jv_get (o, "replay") != NULL)
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

  if (jv_get (o, "derived") != NULL)
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

/* A buddy.  With @keys, the keys of its devices are left to @keys (see
 * KeyQueue) and duplicates found from their coordinates. */
static E2eeBuddyRecord *
parse_buddy (const Jv *o, const Where *where, gboolean sealed, KeyQueue *keys,
             GError **error)
{
  E2eeBuddyRecord *buddy = NULL;
  guint first_job = keys != NULL ? keys->open->len : 0;
  const Jv *devices;
  const char *name, *policy;
  E2eePolicy pol;
  gboolean key_changed, had_encrypted;
  Where bwhere = *where, dwhere = { &bwhere, "devices", 0, NULL, NULL };
  guint i = 0;

  if (o->type != JV_OBJECT)
    {
      corrupt (error, where, "element is not an object");
      return NULL;
    }
  if (!check_members (o, buddy_members, where, error)
      || !get_string (o, "name", where, &name, error))
    return NULL;
  bwhere.name = name;
  if (!get_string (o, "policy", &bwhere, &policy, error)
      || !get_bool (o, "key_changed", &bwhere, &key_changed, error)
      || !get_bool (o, "had_encrypted", &bwhere, &had_encrypted, error))
    return NULL;
  if (!e2ee_policy_from_string (policy, &pol))
    {
      corrupt (error, &bwhere, "unknown policy \"%s\"", policy);
      return NULL;
    }
  devices = get_array (o, "devices", &bwhere, error);
  if (devices == NULL)
    return NULL;

  buddy = buddy_record_new (name);
  buddy->policy = pol;
  buddy->key_changed = key_changed;
  buddy->had_encrypted = had_encrypted;
  for (const Jv *d = devices->u.first; d != NULL; d = d->next, i++)
    {
      E2eeDeviceRecord *dev;
      KeyJob *job = NULL;
      gboolean duplicate;

      dwhere.index = (gint) i;
      if (keys != NULL)
        {
          const Where *awhere = where->up;

          g_array_set_size (keys->open, keys->open->len + 1);
          job = &g_array_index (keys->open, KeyJob, keys->open->len - 1);
          job->account = awhere->index;
          job->protocol = awhere->protocol;
          job->account_name = awhere->name;
          job->buddy = where->index;
          job->buddy_name = name;
          job->device = (gint) i;
        }
      dev = parse_device (d, &dwhere, sealed, job, error);
      if (dev == NULL)
        goto fail;
      if (job == NULL)
        duplicate = e2ee_buddy_find_device (buddy, dev->key) != NULL;
      else
        {
          duplicate = FALSE;
          for (guint k = first_job; k + 1 < keys->open->len && !duplicate; k++)
            {
              const KeyJob *other = &g_array_index (keys->open, KeyJob, k);
              duplicate = memcmp (other->x, job->x, sizeof job->x) == 0
                          && memcmp (other->y, job->y, sizeof job->y) == 0;
            }
        }
      if (duplicate)
        {
          e2ee_device_record_free (dev);
          corrupt (error, &dwhere, "duplicate device");
          goto fail;
        }
      g_ptr_array_add (buddy->devices, dev);
    }
  if (keys != NULL && keys->open->len >= KEY_BATCH)
    key_queue_flush (keys);
  return buddy;

fail:
  if (keys != NULL)
    g_array_set_size (keys->open, first_job);
  buddy_record_free (buddy);
  return NULL;
}

static E2eeAccountRecord *
parse_account (const Jv *o, const Where *where, gboolean sealed, GError **error)
{
  E2eeAccountRecord *account = NULL;
  g_autoptr (E2eeKey) identity = NULL;
  const Jv *jwk, *buddies, *b = NULL;
  const char *protocol, *name;
  gint64 counter;
  Where awhere = *where, bwhere = { &awhere, "buddies", 0, NULL, NULL };

  if (o->type != JV_OBJECT)
    {
      corrupt (error, where, "element is not an object");
      return NULL;
    }
  if (!check_members (o, account_members, where, error)
      || !get_string (o, "protocol", where, &protocol, error)
      || !get_string (o, "name", where, &name, error))
    return NULL;
  awhere.protocol = protocol;
  awhere.name = name;
  jwk = get_object (o, "identity", &awhere, error);
  if (jwk == NULL)
    return NULL;
  /* A protected file keeps only the public half here; the scalar is in
   * the sealed part and joined to it after decryption. */
  identity = parse_identity (jwk, NULL, sealed ? E2EE_KEY_EXPECT_PUBLIC
                                               : E2EE_KEY_EXPECT_PRIVATE, &awhere, error);
  if (identity == NULL
      || !get_int (o, "last_counter", &awhere, 0, JSON_SAFE_MAX, &counter, error))
    return NULL;
  buddies = jv_get (o, "buddies");
  if (buddies == NULL || buddies->type != JV_STREAMED)
    buddies = get_array (o, "buddies", &awhere, error);
  if (buddies == NULL)
    return NULL;
  if (buddies->type == JV_ARRAY)
    b = buddies->u.first;

  account = e2ee_account_record_new (protocol, name, identity);
  account->last_counter = (guint64) counter;
  for (guint n = 0; n < buddies->len; n++)
    {
      E2eeBuddyRecord *buddy;

      bwhere.index = (gint) n;
      if (buddies->type == JV_STREAMED)
        {
          /* Read already (as the file was): taken over from the reader. */
          buddy = g_steal_pointer (&buddies->u.records->pdata[n]);
        }
      else
        {
          buddy = parse_buddy (b, &bwhere, sealed, NULL, error);
          b = b->next;
        }
      if (buddy == NULL)
        goto fail;
      if (g_hash_table_contains (account->buddies, buddy->name))
        {
          corrupt (error, &bwhere, "duplicate buddy \"%s\"", buddy->name);
          buddy_record_free (buddy);
          goto fail;
        }
      g_hash_table_insert (account->buddies, buddy->name, buddy);
    }
  return account;

fail:
  e2ee_account_record_free (account);
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
parse_sealed (const Jv *root, Sealed *s, GError **error)
{
  const Where *where = &where_sealed;
  const Jv *o = get_object (root, "sealed", &where_document, error);
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
apply_secrets (E2eeKeyring *keyring, const Jv *root, const Jv *doc_root, GError **error)
{
  const Jv *accounts, *so, *pub;
  Where awhere = { &where_secrets, "accounts", 0, NULL, NULL };
  Where dwhere = { &awhere, "derived", 0, NULL, NULL };
  guint a = 0;

  if (!check_members (root, secrets_members, &where_secrets, error))
    return FALSE;
  accounts = get_array (root, "accounts", &where_secrets, error);
  if (accounts == NULL)
    return FALSE;
  if (accounts->len != keyring->accounts->len)
    return corrupt (error, &where_secrets, "account count does not match");

  pub = jv_get (doc_root, "accounts")->u.first;
  for (so = accounts->u.first; so != NULL; so = so->next, pub = pub->next, a++)
    {
      E2eeAccountRecord *account = g_ptr_array_index (keyring->accounts, a);
      const Jv *derived;
      const char *protocol, *name, *d;
      E2eeKey *identity;
      guint i = 0;

      awhere.index = (gint) a;
      if (so->type != JV_OBJECT)
        return corrupt (error, &awhere, "element is not an object");
      if (!check_members (so, secret_account_members, &awhere, error)
          || !get_string (so, "protocol", &awhere, &protocol, error)
          || !get_string (so, "name", &awhere, &name, error)
          || !get_string (so, "d", &awhere, &d, error))
        return FALSE;
      if (strcmp (protocol, account->protocol) != 0 || strcmp (name, account->name) != 0)
        return corrupt (error, &awhere, "account does not match");

      /* The public JWK from the document plus "d": the JWK parser then
       * checks that the scalar belongs to the stored point. */
      identity = parse_identity (jv_get (pub, "identity"), d, E2EE_KEY_EXPECT_PRIVATE,
                                 &awhere, error);
      if (identity == NULL)
        return FALSE;
      e2ee_key_unref (account->identity);
      account->identity = identity;

      derived = get_array (so, "derived", &awhere, error);
      if (derived == NULL)
        return FALSE;
      for (const Jv *dobj = derived->u.first; dobj != NULL; dobj = dobj->next, i++)
        {
          const char *buddy_name, *kid;
          E2eeBuddyRecord *buddy;
          E2eeDeviceRecord *dev;

          dwhere.index = (gint) i;
          if (dobj->type != JV_OBJECT)
            return corrupt (error, &dwhere, "element is not an object");
          if (!check_members (dobj, secret_derived_members, &dwhere, error)
              || !get_string (dobj, "buddy", &dwhere, &buddy_name, error)
              || !get_string (dobj, "kid", &dwhere, &kid, error))
            return FALSE;
          buddy = g_hash_table_lookup (account->buddies, buddy_name);
          dev = buddy != NULL ? e2ee_buddy_find_device_by_kid (buddy, kid) : NULL;
          if (dev == NULL)
            return corrupt (error, &dwhere, "no such device");
          if (dev->have_keys)
            return corrupt (error, &dwhere, "duplicate derived keys");
          if (!parse_derived (dobj, &dwhere, dev, error))
            return FALSE;
        }
    }
  return TRUE;
}

static gboolean
unseal (E2eeKeyring *keyring, const Jv *doc_root, Sealed *s,
        const char *passphrase, GError **error)
{
  g_autoptr (GByteArray) aad = NULL;
  g_autoptr (GPtrArray) sorted = NULL;
  g_autoptr (E2eeAead) aead = NULL;
  guint8 *seal_key = e2ee_secret_alloc (E2EE_AEAD_KEY_LEN);
  guint8 check[SEAL_CHECK_LEN];
  gsize len = s->ct_len - E2EE_AEAD_TAG_LEN;
  guint8 *plain = e2ee_secret_alloc (len + 1);
  JvReader reader = { 0 };
  const Jv *root;
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

  sorted = sorted_accounts (keyring);
  aad = keyring_aad (keyring, sorted);
  aead = e2ee_aead_new (seal_key, error);
  if (aead == NULL)
    goto out;
  if (!e2ee_aead_open (aead, s->iv, aad->data, aad->len, s->ct, len,
                       s->ct + len, plain, NULL))
    {
      corrupt (error, &where_sealed, "the protected part does not match the file "
               "(it was modified)");
      goto out;
    }

  /* plain[len] is the NUL the reader needs. */
  root = jv_parse (&reader, (char *) plain, len, FALSE, NULL, &where_secrets, NULL);
  if (root == NULL)
    {
      corrupt (error, &where_sealed, "the protected part is not a JSON object");
      goto out;
    }
  if (!apply_secrets (keyring, root, doc_root, error))
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
  ok = TRUE;

out:
  jv_reader_clear (&reader);
  e2ee_secret_free (seal_key, E2EE_AEAD_KEY_LEN);
  e2ee_secret_free (plain, len + 1);
  e2ee_wipe (check, sizeof check);
  return ok;
}

/* Parses a whole file (@data: @len bytes and a NUL; parsed in place).
 * With @check_only, a protected file is checked for structure but not
 * decrypted (used before a save replaces it). */
static E2eeKeyring *
keyring_parse (const char *path, char *data, gsize len, const char *passphrase,
               gboolean check_only, GError **error)
{
  E2eeKeyring *keyring = NULL;
  JvReader reader = { 0 };
  KeyQueue *keys = NULL;
  const Jv *root, *accounts;
  Where awhere = { NULL, "accounts", 0, NULL, NULL };
  const char *format;
  gint64 version;
  gboolean sealed;
  Sealed s = { 0 };
  guint i = 0;

  if (len >= KEY_THREAD_MIN_BYTES)
    keys = key_queue_new ();
  root = jv_parse (&reader, data, len, TRUE, keys, &where_document, error);
  if (keys != NULL)
    {
      key_queue_finish (keys);
      if (key_queue_failed (keys, error))
        goto out;
      if (root != NULL)
        key_queue_assign (keys);
    }
  if (root == NULL)
    goto out;

  if (!get_string (root, "format", &where_document, &format, error))
    goto out;
  if (strcmp (format, KEYRING_FORMAT) != 0)
    {
      corrupt (error, &where_document, "not a purple-e2ee keyring (format \"%s\")", format);
      goto out;
    }
  if (!get_int (root, "version", &where_document, 1, G_MAXINT64, &version, error))
    goto out;
  if (version > E2EE_KEYRING_FORMAT_VERSION)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_VERSION,
                   "keyring %s was written by a newer version (format %" G_GINT64_FORMAT
                   ", this one reads %d)", path, version, E2EE_KEYRING_FORMAT_VERSION);
      goto out;
    }
  if (!check_members (root, root_members, &where_document, error))
    goto out;
  sealed = jv_get (root, "sealed") != NULL;
  if (sealed && !parse_sealed (root, &s, error))
    goto out;
  if (sealed && reader.streamed_derived)
    {
      corrupt (error, &awhere, "derived keys in clear in a protected keyring");
      goto out;
    }
  accounts = get_array (root, "accounts", &where_document, error);
  if (accounts == NULL)
    goto out;

  keyring = e2ee_keyring_new (path);
  for (const Jv *a = accounts->u.first; a != NULL; a = a->next, i++)
    {
      E2eeAccountRecord *account;

      awhere.index = (gint) i;
      account = parse_account (a, &awhere, sealed, error);
      if (account == NULL)
        goto fail;
      if (e2ee_keyring_lookup_account (keyring, account->protocol, account->name) != NULL)
        {
          corrupt (error, &awhere, "duplicate account");
          e2ee_account_record_free (account);
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
  /* The key thread is done before any record goes. */
  key_queue_free (keys);
  jv_reader_clear (&reader);
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

/* A large buffer is faulted in by one madvise call (in huge pages where
 * the kernel has them) rather than a page at a time as read() first
 * touches it, which is most of the cost of reading a large file into
 * fresh memory; memory the allocator reuses is already there and the
 * call costs next to nothing. */
static char *
file_buffer_new (gsize size)
{
  char *buf = g_malloc (size);
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  guintptr start = ((guintptr) buf + page - 1) & ~(guintptr) (page - 1);
  guintptr end = ((guintptr) buf + size) & ~(guintptr) (page - 1);

  if (size >= 1024 * 1024 && end > start)
    {
#ifdef MADV_HUGEPAGE
      (void) madvise ((void *) start, end - start, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
      (void) madvise ((void *) start, end - start, MADV_POPULATE_WRITE);
#endif
    }
  return buf;
}

static void
file_buffer_free (char *buf, gsize size)
{
  e2ee_secret_free (buf, size);
}

/* Reads a keyring file into a buffer to free with file_buffer_free().
 * *@missing is set (and TRUE returned) when there is no such file. */
static gboolean
read_file (const char *path, gboolean check_mode, char **out, gsize *out_len,
           gboolean *missing, struct stat *out_st, GError **error)
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
  /* Not zeroed first: every byte used is read or set below, and the
   * whole buffer is wiped when freed. */
  buf = file_buffer_new (size + 2);
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
          file_buffer_free (buf, size + 2);
          return io_error (error, errsv, "read", path);
        }
      if (n == 0)
        break;
      done += (gsize) n;
    }
  close (fd);
  if (done != size)
    {
      file_buffer_free (buf, size + 2);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                   "keyring: %s changed while being read", path);
      return FALSE;
    }
  buf[size] = '\0';
  buf[size + 1] = '\0';
  *out = buf;
  *out_len = size;
  if (out_st != NULL)
    *out_st = st;
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
                     gsize *out_len, gboolean *missing, struct stat *out_st,
                     GError **error)
{
  g_autofree char *backup = NULL;

  if (!read_file (path, check_mode, out, out_len, missing, out_st, error))
    return FALSE;
  if (!*missing)
    return TRUE;
  backup = backup_path (path);
  return read_file (backup, check_mode, out, out_len, missing, out_st, error);
}

/* ---- What is on disk ---- */

/* A file whose timestamps are this recent may still change within the
 * same timestamp tick (coarse clocks, 1 s or 2 s on some file systems)
 * without its stat data showing it. */
#define DISK_RACY_US (2 * G_USEC_PER_SEC)

static gint64
timespec_us (const struct timespec *ts)
{
  return (gint64) ts->tv_sec * G_USEC_PER_SEC + ts->tv_nsec / 1000;
}

/* CRC-32 of @len bytes; FALSE if libgcrypt will not compute it (then the
 * caller parses the file instead). */
static gboolean
content_crc (const char *data, gsize len, guint32 *out)
{
  gcry_buffer_t iov[1] = { { 0 } };
  guint8 crc[4];

  if (!e2ee_gcrypt_init (NULL))
    return FALSE;
  iov[0].data = (void *) data;
  iov[0].len = len;
  if (gcry_md_hash_buffers (GCRY_MD_CRC32, 0, crc, iov, 1) != 0)
    return FALSE;
  *out = (guint32) crc[0] << 24 | (guint32) crc[1] << 16 | (guint32) crc[2] << 8 | crc[3];
  return TRUE;
}

/* Remembers that the file described by @st holds what this keyring
 * either parsed in full or wrote itself: @data (@len bytes), or contents
 * whose CRC-32 is *@crc. */
static void
disk_remember (DiskState *disk, const struct stat *st, const char *data, gsize len,
               const guint32 *crc)
{
  gint64 now = g_get_real_time ();

  memset (disk, 0, sizeof *disk);
  disk->dev = st->st_dev;
  disk->ino = st->st_ino;
  disk->size = st->st_size;
  disk->mtime = st->st_mtim;
  disk->ctime = st->st_ctim;
  disk->racy = timespec_us (&st->st_mtim) > now - DISK_RACY_US
               || timespec_us (&st->st_ctim) > now - DISK_RACY_US;
  /* A racy entry is only trusted with a matching checksum. */
  if (!disk->racy)
    disk->known = TRUE;
  else if (crc != NULL)
    {
      disk->crc = *crc;
      disk->known = TRUE;
    }
  else
    disk->known = data != NULL && content_crc (data, len, &disk->crc);
}

static gboolean
disk_unchanged (const DiskState *disk, const struct stat *st)
{
  return disk->known && S_ISREG (st->st_mode)
         && st->st_dev == disk->dev && st->st_ino == disk->ino
         && st->st_size == disk->size
         && st->st_mtim.tv_sec == disk->mtime.tv_sec
         && st->st_mtim.tv_nsec == disk->mtime.tv_nsec
         && st->st_ctim.tv_sec == disk->ctime.tv_sec
         && st->st_ctim.tv_nsec == disk->ctime.tv_nsec;
}

/* TRUE if the file at @path is still the one @disk describes (for a racy
 * entry, contents included: read in chunks, never whole). */
static gboolean
disk_still_ours (const DiskState *disk, const char *path)
{
  struct stat st;
  gcry_md_hd_t md = NULL;
  guint8 *chunk = NULL;
  gboolean same = FALSE;
  int fd;

  if (!disk->known || stat (path, &st) != 0 || !disk_unchanged (disk, &st)
      || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return FALSE;
  if (!disk->racy)
    return TRUE;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return FALSE;
  if (fstat (fd, &st) != 0 || !disk_unchanged (disk, &st) || !e2ee_gcrypt_init (NULL)
      || gcry_md_open (&md, GCRY_MD_CRC32, 0) != 0)
    goto out;
  chunk = g_malloc (OUT_CHUNK);
  for (;;)
    {
      ssize_t n = read (fd, chunk, OUT_CHUNK);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        goto out;
      if (n == 0)
        break;
      gcry_md_write (md, chunk, (size_t) n);
    }
  {
    const guint8 *c = gcry_md_read (md, GCRY_MD_CRC32);
    same = c != NULL
           && ((guint32) c[0] << 24 | (guint32) c[1] << 16 | (guint32) c[2] << 8 | c[3])
              == disk->crc;
  }

out:
  if (chunk != NULL)
    e2ee_secret_free (chunk, OUT_CHUNK);
  if (md != NULL)
    gcry_md_close (md);
  close (fd);
  return same;
}

E2eeKeyring *
e2ee_keyring_load (const char *path, const char *passphrase, GError **error)
{
  E2eeKeyring *keyring = NULL;
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE;
  struct stat st;
  DiskState disk = { 0 };
  int lock_fd = -1;

  g_return_val_if_fail (path != NULL && *path != '\0', NULL);

  if (!lock_acquire (path, LOCK_SH, TRUE, &lock_fd, error))
    return NULL;
  if (!read_file_or_backup (path, TRUE, &data, &len, &missing, &st, error))
    goto out;
  if (missing)
    {
      keyring = e2ee_keyring_new (path);
      goto out;
    }
  /* Before parsing: the reader decodes strings in place. */
  disk_remember (&disk, &st, data, len, NULL);
  keyring = keyring_parse (path, data, len, passphrase, FALSE, error);
  if (keyring != NULL)
    keyring->disk = disk;

out:
  lock_release (lock_fd);
  file_buffer_free (data, len + 2);
  return keyring;
}

gboolean
e2ee_keyring_file_is_protected (const char *path)
{
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE, result = FALSE;
  JvReader reader = { 0 };
  const Jv *root, *sealed;
  int lock_fd = -1;

  g_return_val_if_fail (path != NULL, FALSE);
  if (!lock_acquire (path, LOCK_SH, TRUE, &lock_fd, NULL))
    return FALSE;
  if (!read_file_or_backup (path, FALSE, &data, &len, &missing, NULL, NULL) || missing)
    goto out;
  root = jv_parse (&reader, data, len, FALSE, NULL, &where_document, NULL);
  sealed = root != NULL ? jv_get (root, "sealed") : NULL;
  result = sealed != NULL && sealed->type == JV_OBJECT;

out:
  jv_reader_clear (&reader);
  lock_release (lock_fd);
  file_buffer_free (data, len + 2);
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

/* Writes the keyring, through a small buffer, into a new private
 * temporary file next to its path, synced.  Returns the file's name, or
 * NULL (nothing left behind); its stat data in @out_st and, when
 * libgcrypt gives it, the CRC-32 of what was written in *@crc. */
static char *
write_keyring_temp (E2eeKeyring *keyring, GPtrArray *sorted, struct stat *out_st,
                    gboolean *have_crc, guint32 *crc, GError **error)
{
  char *tmp = g_strconcat (keyring->path, ".tmp-XXXXXX", NULL);
  Out out = { NULL, -1, NULL, 0 };
  int fd, errsv;

  *have_crc = FALSE;
  fd = g_mkstemp_full (tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      errsv = errno;
      io_error (error, errsv, "create a temporary file for", keyring->path);
      g_free (tmp);
      return NULL;
    }
  out.buf = g_string_sized_new (OUT_CHUNK + 1024);
  out.fd = fd;
  if (!e2ee_gcrypt_init (NULL) || gcry_md_open (&out.crc, GCRY_MD_CRC32, 0) != 0)
    out.crc = NULL;
  if (!keyring_write (keyring, sorted, &out, error))
    {
      close (fd);
      goto fail_quiet;
    }
  out_flush (&out);
  if (out.errsv != 0)
    {
      errsv = out.errsv;
      close (fd);
      goto fail;
    }
  if (fsync (fd) != 0 || fstat (fd, out_st) != 0)
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
  if (out.crc != NULL)
    {
      const guint8 *c = gcry_md_read (out.crc, GCRY_MD_CRC32);

      *have_crc = c != NULL;
      if (c != NULL)
        *crc = (guint32) c[0] << 24 | (guint32) c[1] << 16 | (guint32) c[2] << 8 | c[3];
      gcry_md_close (out.crc);
    }
  e2ee_gstring_free (out.buf);
  return tmp;

fail:
  io_error (error, errsv, "write", tmp);
fail_quiet:
  unlink (tmp);
  g_free (tmp);
  if (out.crc != NULL)
    gcry_md_close (out.crc);
  e2ee_gstring_free (out.buf);
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

  if (!read_file (path, FALSE, &data, &len, &missing, NULL, error))
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
  file_buffer_free (data, len + 2);
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
 * have loaded it (a failed load followed by a fresh keyring).
 *
 * Parsing the file costs as much as a load, so it is skipped when the
 * file is the one this keyring last loaded or saved: same device, inode,
 * size, mtime and ctime (any write, rename over it, chmod or link
 * changes one of them) and, if those were recorded less than a timestamp
 * tick before a change could have hidden in it, the same CRC-32.  What
 * this protects against is a file changed by someone else (another
 * version, a hand edit) being lost, not a forger: whoever can write the
 * file can delete it. */
static gboolean
check_replaceable (E2eeKeyring *keyring, GError **error)
{
  g_autoptr (GError) local = NULL;
  const char *path = keyring->path;
  E2eeKeyring *existing;
  char *data = NULL;
  gsize len = 0;
  gboolean missing = FALSE;

  if (disk_still_ours (&keyring->disk, path))
    return TRUE;

  if (!read_file (path, TRUE, &data, &len, &missing, NULL, &local))
    goto refuse;
  if (missing)
    return TRUE;
  existing = keyring_parse (path, data, len, NULL, TRUE, &local);
  file_buffer_free (data, len + 2);
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

/* Temporary files of writers that died mid-save (a crash, SIGKILL) hold a
 * copy of the secrets.  Only a writer holding the exclusive lock has a
 * temporary file, so under that lock every "<name>.tmp-XXXXXX" is stale. */
static void
remove_stale_temps (const char *path)
{
  g_autofree char *folder = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  GDir *dir = g_dir_open (folder, 0, NULL);
  gsize blen = strlen (base);
  const char *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (strncmp (name, base, blen) == 0 && g_str_has_prefix (name + blen, ".tmp-")
          && strlen (name + blen) == strlen (".tmp-XXXXXX"))
        {
          g_autofree char *stale = g_build_filename (folder, name, NULL);
          unlink (stale);
        }
    }
  g_dir_close (dir);
}

gboolean
e2ee_keyring_save (E2eeKeyring *keyring, GError **error)
{
  g_autoptr (GPtrArray) sorted = NULL;
  char *tmp = NULL;
  struct stat st, written;
  gboolean ok = FALSE, have_crc = FALSE;
  guint32 crc = 0;
  int lock_fd = -1;

  g_return_val_if_fail (keyring != NULL, FALSE);

  if (!check_save_ranges (keyring, error))
    return FALSE;
  sorted = sorted_accounts (keyring);
  if (!lock_acquire (keyring->path, LOCK_EX, FALSE, &lock_fd, error))
    goto out;
  if (!check_replaceable (keyring, error))
    goto out;
  remove_stale_temps (keyring->path);

  tmp = write_keyring_temp (keyring, sorted, &written, &have_crc, &crc, error);
  if (tmp == NULL)
    goto out;
  /* From here the file on disk is no longer the one remembered. */
  keyring->disk.known = FALSE;
  if (lstat (keyring->path, &st) == 0 && !make_backup (keyring->path, error))
    goto out;
  if (rename (tmp, keyring->path) != 0)
    {
      io_error (error, errno, "replace", keyring->path);
      goto out;
    }
  g_clear_pointer (&tmp, g_free);
  sync_folder (keyring->path);
  /* The rename changed its ctime: look again, and only remember it if it
   * is still the file just written. */
  if (stat (keyring->path, &st) == 0 && st.st_dev == written.st_dev
      && st.st_ino == written.st_ino && st.st_size == written.st_size)
    disk_remember (&keyring->disk, &st, NULL, 0, have_crc ? &crc : NULL);
  ok = TRUE;

out:
  if (tmp != NULL)
    {
      unlink (tmp);
      g_free (tmp);
    }
  lock_release (lock_fd);
  return ok;
}
