/* purple-e2ee — command-line tool over the core library: keys,
 * fingerprints, safety numbers and single envelopes for interop.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2ee-cli-keyring.h"
#include "e2ee-cli-seal.h"
#include "e2ee-keyset.h"
#include "e2ee-error.h"
#include "e2ee-fingerprint.h"
#include "e2ee-gcrypt.h"
#include "e2ee-keyring.h"
#include "e2ee-wipe.h"

#define CLI_MAX_INPUT (1024 * 1024)

typedef int (*CommandFunc) (int argc, char **argv);

/* ---- input and output ------------------------------------------------- */

/* Reads a whole file, or stdin for NULL / "-", into a buffer the caller
 * frees with e2ee_secret_free (it may hold a private key).  read(2), not
 * stdio, and a buffer that grows by copy-wipe-free: no freed block (stdio's
 * buffer, a reallocated string) keeps a copy of the key. */
char *
e2ee_cli_read_input (const char *path, gsize *len, GError **error)
{
  gboolean is_stdin = !path || strcmp (path, "-") == 0;
  int fd = is_stdin ? STDIN_FILENO : open (path, O_RDONLY | O_CLOEXEC);
  gsize cap = 4096, n = 0;
  gboolean failed = FALSE;
  char *buf;

  if (fd < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   _("cannot open %s: %s"), path, g_strerror (errno));
      return NULL;
    }
  buf = (char *) e2ee_secret_alloc (cap + 1);
  for (;;)
    {
      ssize_t got;

      if (n == cap)
        {
          char *bigger;

          if (cap >= CLI_MAX_INPUT)
            {
              g_set_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TOO_LARGE,
                           _("input is larger than %d bytes"), CLI_MAX_INPUT);
              failed = TRUE;
              break;
            }
          bigger = (char *) e2ee_secret_alloc (MIN (cap * 2, CLI_MAX_INPUT) + 1);
          memcpy (bigger, buf, n);
          e2ee_secret_free (buf, cap + 1);
          buf = bigger;
          cap = MIN (cap * 2, CLI_MAX_INPUT);
        }
      got = read (fd, buf + n, cap - n);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                       _("cannot read %s: %s"), is_stdin ? _("standard input") : path,
                       g_strerror (errno));
          failed = TRUE;
          break;
        }
      if (got == 0)
        break;
      n += (gsize) got;
    }
  if (!is_stdin)
    close (fd);
  if (failed)
    {
      e2ee_secret_free (buf, cap + 1);
      return NULL;
    }
  {
    /* An exact-size copy so the caller knows what to wipe. */
    char *out = (char *) e2ee_secret_alloc (n + 1);
    memcpy (out, buf, n);
    e2ee_secret_free (buf, cap + 1);
    *len = n;
    return out;
  }
}

E2eeKey *
e2ee_cli_load_key (const char *path, E2eeKeyExpect expect, GError **error)
{
  gsize len = 0;
  char *text = e2ee_cli_read_input (path, &len, error);
  E2eeKey *key;

  if (text == NULL)
    return NULL;
  key = e2ee_key_from_jwk (text, (gssize) len, expect, error);
  e2ee_secret_free (text, len + 1);
  if (key == NULL)
    g_prefix_error (error, "%s: ", path ? path : _("standard input"));
  return key;
}

/* A public key or a JWK Set of them. */
GPtrArray *
e2ee_cli_load_public_keys (const char *path, GError **error)
{
  gsize len = 0;
  char *text = e2ee_cli_read_input (path, &len, error);
  GPtrArray *keys = NULL;

  if (text == NULL)
    return NULL;
  if (strstr (text, "\"keys\"") != NULL)
    keys = e2ee_keyset_parse (text, (gssize) len, error);
  else
    {
      E2eeKey *key = e2ee_key_from_jwk (text, (gssize) len, E2EE_KEY_EXPECT_PUBLIC, error);
      if (key)
        {
          keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
          g_ptr_array_add (keys, e2ee_key_public_copy (key));
          e2ee_key_unref (key);
        }
    }
  e2ee_secret_free (text, len + 1);
  if (keys == NULL)
    g_prefix_error (error, "%s: ", path);
  return keys;
}

int
e2ee_cli_fail (GError *error)
{
  g_printerr ("purple-e2ee: %s\n", error->message);
  g_error_free (error);
  return 1;
}

int
e2ee_cli_usage_error (const char *message)
{
  g_printerr ("purple-e2ee: %s\n%s\n", message, _("Try 'purple-e2ee --help'."));
  return 2;
}

gboolean
e2ee_cli_wants_help (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      return TRUE;
  return FALSE;
}

/* Parses "--private FILE --public FILE" (derive). */
static gboolean
parse_pair (int argc, char **argv, const char **priv, const char **pub)
{
  *priv = *pub = NULL;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--private") == 0 && i + 1 < argc)
        *priv = argv[++i];
      else if (strcmp (argv[i], "--public") == 0 && i + 1 < argc)
        *pub = argv[++i];
      else
        return FALSE;
    }
  return *priv && *pub;
}

/* Plaintext rules of PROTOCOL.md §5.2/§5.3: UTF-8 text without NUL. */
gboolean
e2ee_cli_check_plaintext (const char *text, gsize len, GError **error)
{
  if (memchr (text, '\0', len) != NULL || !g_utf8_validate (text, (gssize) len, NULL))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TRAILING,
                           _("the message must be UTF-8 text without NUL characters"));
      return FALSE;
    }
  return TRUE;
}

/* ---- commands --------------------------------------------------------- */

static int
cmd_keygen (int argc, char **argv)
{
  const char *out_path = NULL;
  GError *error = NULL;
  g_autoptr (E2eeKey) key = NULL;
  char *jwk;
  int status = 0;

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee keygen [-o FILE]\n"
                       "Generates a P-256 identity key and writes it as a private JWK\n"
                       "to FILE (created with mode 0600; never overwritten) or stdout.\n"));
      return 0;
    }
  if (argc == 3 && strcmp (argv[1], "-o") == 0)
    out_path = argv[2];
  else if (argc != 1)
    return e2ee_cli_usage_error (_("keygen takes only -o FILE"));

  if (!(key = e2ee_key_generate (&error)))
    return e2ee_cli_fail (error);
  jwk = e2ee_key_to_jwk (key, TRUE, TRUE);
  if (out_path == NULL)
    g_print ("%s\n", jwk);
  else
    {
      /* O_EXCL: never replace an existing key; 0600 from the first byte. */
      int fd = open (out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      gsize len = strlen (jwk);
      if (fd < 0 || write (fd, jwk, len) != (ssize_t) len || write (fd, "\n", 1) != 1
          || fsync (fd) != 0)
        {
          g_printerr (_("purple-e2ee: cannot write %s: %s\n"), out_path, g_strerror (errno));
          status = 1;
          if (fd >= 0)
            unlink (out_path);
        }
      if (fd >= 0)
        close (fd);
    }
  e2ee_string_free (jwk);
  return status;
}

static int
cmd_public (int argc, char **argv)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) key = NULL;
  g_autofree char *jwk = NULL;

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee public [FILE]\n"
                       "Reads a private or public JWK from FILE (or stdin) and prints\n"
                       "the public JWK with its kid.\n"));
      return 0;
    }
  if (argc > 2)
    return e2ee_cli_usage_error (_("public takes at most one FILE"));
  if (!(key = e2ee_cli_load_key (argc == 2 ? argv[1] : NULL, E2EE_KEY_EXPECT_ANY, &error)))
    return e2ee_cli_fail (error);
  jwk = e2ee_key_to_jwk (key, FALSE, TRUE);
  g_print ("%s\n", jwk);
  return 0;
}

static int
cmd_fingerprint (int argc, char **argv)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) key = NULL;
  g_autofree char *hex = NULL;

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee fingerprint FILE\n"
                       "Prints the key's RFC 7638 thumbprint (base64url) and the same\n"
                       "as grouped hex.\n"));
      return 0;
    }
  if (argc != 2)
    return e2ee_cli_usage_error (_("fingerprint takes one FILE"));
  if (!(key = e2ee_cli_load_key (argv[1], E2EE_KEY_EXPECT_ANY, &error)))
    return e2ee_cli_fail (error);
  hex = e2ee_fingerprint_hex (key);
  g_print ("%s\n%s\n", e2ee_key_get_kid (key), hex);
  return 0;
}

static int
cmd_safety_number (int argc, char **argv)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) a = NULL;
  g_autoptr (E2eeKey) b = NULL;
  g_autofree char *number = NULL;

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee safety-number FILE FILE\n"
                       "Prints the 60-digit safety number of two keys; both people\n"
                       "see the same number whatever the order.\n"));
      return 0;
    }
  if (argc != 3)
    return e2ee_cli_usage_error (_("safety-number takes two FILEs"));
  if (!(a = e2ee_cli_load_key (argv[1], E2EE_KEY_EXPECT_ANY, &error))
      || !(b = e2ee_cli_load_key (argv[2], E2EE_KEY_EXPECT_ANY, &error)))
    return e2ee_cli_fail (error);
  number = e2ee_safety_number (a, b);
  g_print ("%s\n", number);
  return 0;
}

static int
cmd_derive (int argc, char **argv)
{
  const char *priv, *pub;
  GError *error = NULL;
  g_autoptr (E2eeKey) local = NULL;
  g_autoptr (E2eeKey) remote = NULL;
  guint8 shared[E2EE_KEY_COORD_LEN];

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee derive --private FILE --public FILE\n"
                       "Prints the raw ECDH shared secret (x-coordinate) in hex, as\n"
                       "WebCrypto deriveBits(256) and openssl pkeyutl -derive give it.\n"
                       "For interop debugging only: the protocol never uses it as a key.\n"));
      return 0;
    }
  if (!parse_pair (argc, argv, &priv, &pub))
    return e2ee_cli_usage_error (_("derive needs --private FILE --public FILE"));
  if (!(local = e2ee_cli_load_key (priv, E2EE_KEY_EXPECT_PRIVATE, &error))
      || !(remote = e2ee_cli_load_key (pub, E2EE_KEY_EXPECT_PUBLIC, &error))
      || !e2ee_key_ecdh (local, remote, shared, &error))
    return e2ee_cli_fail (error);
  for (guint i = 0; i < sizeof shared; i++)
    g_print ("%02x", shared[i]);
  g_print ("\n");
  e2ee_wipe (shared, sizeof shared);
  return 0;
}

static char *
default_keyring_path (void)
{
  return g_build_filename (g_get_home_dir (), ".purple", "purple-e2ee", "keyring.json", NULL);
}

static int
cmd_keyring (int argc, char **argv)
{
  GError *error = NULL;
  g_autofree char *path = NULL;
  g_autoptr (E2eeKeyring) keyring = NULL;
  GPtrArray *accounts;

  if (e2ee_cli_wants_help (argc, argv) || argc < 2 || strcmp (argv[1], "show") != 0 || argc > 3)
    {
      if (!e2ee_cli_wants_help (argc, argv))
        return e2ee_cli_usage_error (_("usage: purple-e2ee keyring show [FILE]"));
      g_print ("%s", _("Usage: purple-e2ee keyring show [FILE]\n"
                       "Summarises a keyring (default ~/.purple/purple-e2ee/keyring.json):\n"
                       "accounts, fingerprints, buddies' keys and their trust.\n"
                       "Never prints a secret; a protected keyring is shown without\n"
                       "its passphrase.\n"));
      return 0;
    }
  path = argc == 3 ? g_strdup (argv[2]) : default_keyring_path ();
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return e2ee_cli_fail (g_error_new (E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                              _("no keyring at %s"), path));
  if (e2ee_keyring_file_is_protected (path))
    return e2ee_cli_fail (g_error_new (E2EE_ERROR, E2EE_ERROR_KEYRING_PASSPHRASE,
                              _("%s is protected by a passphrase; open it in the plugin"), path));
  if (!(keyring = e2ee_keyring_load (path, NULL, &error)))
    return e2ee_cli_fail (error);
  accounts = e2ee_keyring_get_accounts (keyring);
  g_print (_("Keyring %s: %u account(s)\n"), path, accounts->len);
  for (guint i = 0; i < accounts->len; i++)
    {
      E2eeAccountRecord *account = accounts->pdata[i];
      g_autofree char *hex = e2ee_fingerprint_hex (account->identity);
      g_autoptr (GList) names = g_hash_table_get_keys (account->buddies);

      g_print (_("\nAccount %s (%s)\n  this device: %s\n"), account->name,
               account->protocol, hex);
      names = g_list_sort (names, (GCompareFunc) strcmp);
      for (GList *l = names; l; l = l->next)
        {
          E2eeBuddyRecord *buddy = g_hash_table_lookup (account->buddies, l->data);
          g_print ("  %s%s%s\n", buddy->name,
                   strcmp (buddy->name, account->name) == 0 ? _(" (own other devices)") : "",
                   buddy->key_changed ? _(" [KEY CHANGED]") : "");
          for (guint d = 0; d < buddy->devices->len; d++)
            {
              E2eeDeviceRecord *dev = buddy->devices->pdata[d];
              g_autofree char *dhex = e2ee_fingerprint_hex (dev->key);
              g_print ("    %s  %s\n", dhex, e2ee_trust_to_string (dev->trust));
            }
        }
    }
  return 0;
}

static const struct {
  const char *name;
  CommandFunc func;
} commands[] = {
  { "keygen", cmd_keygen },
  { "public", cmd_public },
  { "fingerprint", cmd_fingerprint },
  { "safety-number", cmd_safety_number },
  { "derive", cmd_derive },
  { "seal", e2ee_cli_seal },
  { "open", e2ee_cli_open },
  { "keyring", e2ee_cli_keyring },   /* show | export | import */
  { "keyring", cmd_keyring },
};

static void
print_help (void)
{
  g_print ("%s", _("Usage: purple-e2ee COMMAND [ARGS]\n\n"
                   "Commands:\n"
                   "  keygen [-o FILE]                         new identity key (private JWK)\n"
                   "  public [FILE]                            public JWK of a key\n"
                   "  fingerprint FILE                         RFC 7638 thumbprint\n"
                   "  safety-number FILE FILE                  number to compare out of band\n"
                   "  derive --private FILE --public FILE      raw ECDH secret (hex)\n"
                   "  seal --private FILE --public FILE --account ID --peer ID\n"
                   "       [--prekey B64 --signing-key B64]    stdin -> armored v2 session start\n"
                   "  open --private FILE --public FILE --account ID --peer ID\n"
                   "                                           armored v2 session start -> stdout\n"
                   "  keyring show [FILE]                      summary of a keyring\n"
                   "  keyring export|import ...                backup without session state\n\n"
                   "Every command accepts --help.\n"));
}

int
main (int argc, char **argv)
{
  GError *error = NULL;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  umask (077);

  if (argc < 2)
    return e2ee_cli_usage_error (_("a command is required"));
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    {
      print_help ();
      return 0;
    }
  if (!e2ee_gcrypt_init (&error))
    return e2ee_cli_fail (error);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].func (argc - 1, argv + 1);
  return e2ee_cli_usage_error (_("unknown command"));
}
