/* The C side of the WebCrypto interop test: a thin driver of the core API.
 *   e2ee-interop-helper keygen                 private JWK (with kid, e2ee_v)
 *   e2ee-interop-helper public FILE            public JWK with kid, e2ee_v
 *   e2ee-interop-helper derive PRIV PUB        Z, K(priv->pub), K(pub->priv) in hex
 *   e2ee-interop-helper seal COUNTER PAD PRIV PUB...   stdin -> armored line
 *   e2ee-interop-helper open PRIV PUB          armored stdin -> plaintext
 *   e2ee-interop-helper seal-v2-raw PRIV ACCOUNT PEER PUB
 *       stdin (any bytes) -> armored protocol v2 single envelope, a session
 *       start without prekey whose ratchet plaintext is stdin as it is: for
 *       checking that readers refuse what the envelope module never seals
 *       (a NUL, invalid UTF-8).
 *   e2ee-interop-helper prekey PUB [CREATED]
 *       a new signing key and a signed prekey record for identity PUB, made
 *       at Unix time CREATED (default now): two lines, base64url of the
 *       signing key's X || Y and of the record.
 * Errors: "error <code>: <message>" on stderr, exit status 1, no stdout.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-jwk.h"
#include "e2ee-kdf.h"
#include "e2ee-v2own.h"
#include "e2ee-wipe.h"

/* libgcrypt allocates its entropy collector's state on the first strong
 * random request and never frees it; not a leak of ours.  Weak, so a
 * project-wide definition takes precedence. */
const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

static int
fail (GError *error)
{
  fprintf (stderr, "error %d: %s\n", error ? error->code : 0,
           error ? error->message : "failed");
  g_clear_error (&error);
  return 1;
}

static E2eeKey *
load_key (const char *file, E2eeKeyExpect expect, GError **error)
{
  char *text = NULL;
  gsize len = 0;
  E2eeKey *key;

  if (!g_file_get_contents (file, &text, &len, error))
    return NULL;
  key = e2ee_key_from_jwk (text, (gssize) len, expect, error);
  e2ee_string_free (text);
  return key;
}

static char *
read_stdin (gsize *len)
{
  GString *s = g_string_new (NULL);
  char buf[4096];
  size_t n;

  while ((n = fread (buf, 1, sizeof buf, stdin)) > 0)
    g_string_append_len (s, buf, (gssize) n);
  *len = s->len;
  return g_string_free (s, FALSE);
}

static void
print_hex (const guint8 *data, gsize len)
{
  for (gsize i = 0; i < len; i++)
    printf ("%02x", data[i]);
  printf ("\n");
}

static int
cmd_keygen (void)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) key = e2ee_key_generate (&error);
  char *jwk;

  if (!key)
    return fail (error);
  jwk = e2ee_key_to_jwk (key, TRUE, TRUE);
  printf ("%s\n", jwk);
  e2ee_string_free (jwk);
  return 0;
}

static int
cmd_public (const char *file)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) key = load_key (file, E2EE_KEY_EXPECT_ANY, &error);
  g_autofree char *jwk = NULL;

  if (!key)
    return fail (error);
  jwk = e2ee_key_to_jwk (key, FALSE, TRUE);
  printf ("%s\n", jwk);
  return 0;
}

static int
cmd_derive (const char *priv, const char *pub, const char *account, const char *peer)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) local = load_key (priv, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_autoptr (E2eeKey) remote = local ? load_key (pub, E2EE_KEY_EXPECT_PUBLIC, &error) : NULL;
  guint8 z[E2EE_KEY_COORD_LEN], ks[E2EE_KEY_LEN], kr[E2EE_KEY_LEN];

  if (!remote || !e2ee_key_ecdh (local, remote, z, &error)
      || !e2ee_kdf_pair_keys (local, account, remote, peer, e2ee_key_get_caps (local),
                              e2ee_key_get_caps (remote), ks, kr, &error))
    return fail (error);
  print_hex (z, sizeof z);
  print_hex (ks, sizeof ks);
  print_hex (kr, sizeof kr);
  e2ee_wipe (z, sizeof z);
  e2ee_wipe (ks, sizeof ks);
  e2ee_wipe (kr, sizeof kr);
  return 0;
}

static int
cmd_seal (const char *counter, const char *pad, const char *priv, const char *account,
          const char *peer, char **pubs, guint n)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) sender = load_key (priv, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  E2eeRecipient recipients[E2EE_ENVELOPE_MAX_RECIPIENTS] = { 0 };
  guint8 wrap_keys[E2EE_ENVELOPE_MAX_RECIPIENTS][E2EE_KEY_LEN];
  E2eeSealParams params = { 0 };
  g_autoptr (GBytes) env = NULL;
  g_autofree char *armored = NULL;
  char *plain;
  gsize len;
  int rc = 1;

  if (!sender)
    return fail (error);
  if (n == 0 || n > E2EE_ENVELOPE_MAX_RECIPIENTS)
    {
      fprintf (stderr, "error: 1 to %d recipients\n", E2EE_ENVELOPE_MAX_RECIPIENTS);
      return 1;
    }
  for (guint i = 0; i < n; i++)
    {
      E2eeKey *r = load_key (pubs[i], E2EE_KEY_EXPECT_PUBLIC, &error);
      if (!r)
        goto out;
      g_ptr_array_add (keys, r);
      if (!e2ee_kdf_direction_key (sender, account, r, peer, e2ee_key_get_caps (sender),
                                   wrap_keys[i], &error))
        goto out;
      memcpy (recipients[i].id, e2ee_key_get_device_id (r), E2EE_DEVICE_ID_LEN);
      recipients[i].key = wrap_keys[i];
      recipients[i].aead = NULL;   /* no cached cipher handle here */
    }
  params.caps = e2ee_key_get_caps (sender);
  memcpy (params.sender_id, e2ee_key_get_device_id (sender), E2EE_DEVICE_ID_LEN);
  params.counter = g_ascii_strtoull (counter, NULL, 10);
  params.recipients = recipients;
  params.n_recipients = n;
  params.pad_block = (gsize) g_ascii_strtoull (pad, NULL, 10);

  plain = read_stdin (&len);
  env = e2ee_envelope_seal (&params, (const guint8 *) plain, len, &error);
  e2ee_secret_free (plain, len);
  if (!env)
    goto out;
  armored = e2ee_armor_encode (env);
  printf ("%s\n", armored);
  rc = 0;

out:
  e2ee_wipe (wrap_keys, sizeof wrap_keys);
  if (rc)
    return fail (error);
  return rc;
}

static int
cmd_open (const char *priv, const char *pub, const char *account, const char *peer)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) me = load_key (priv, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_autoptr (E2eeKey) sender = me ? load_key (pub, E2EE_KEY_EXPECT_PUBLIC, &error) : NULL;
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (E2eeEnvelope) env = NULL;
  guint8 key[E2EE_KEY_LEN];
  guint8 *plain = NULL;
  gsize len = 0, in_len;
  char *in;
  gint index;
  gboolean ok;

  if (!sender)
    return fail (error);
  in = read_stdin (&in_len);
  raw = e2ee_armor_decode (in, &error);
  g_free (in);
  if (!raw || !(env = e2ee_envelope_parse (g_bytes_get_data (raw, NULL),
                                           g_bytes_get_size (raw), &error)))
    return fail (error);
  if (memcmp (e2ee_envelope_get_sender_id (env), e2ee_key_get_device_id (sender),
              E2EE_DEVICE_ID_LEN) != 0)
    {
      g_set_error_literal (&error, E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER,
                           "the envelope is from another device");
      return fail (error);
    }
  index = e2ee_envelope_find_recipient (env, e2ee_key_get_device_id (me));
  if (index < 0)
    {
      g_set_error_literal (&error, E2EE_ERROR, E2EE_ERROR_NOT_FOR_US,
                           "the envelope is not addressed to this device");
      return fail (error);
    }
  /* The sender's published capabilities (§4); a changed header nibble
   * then does not authenticate. */
  ok = e2ee_kdf_direction_key (sender, peer, me, account, e2ee_key_get_caps (sender), key,
                               &error)
       && e2ee_envelope_open (env, (guint) index, key, &plain, &len, &error);
  e2ee_wipe (key, sizeof key);
  if (!ok)
    {
      if (error && error->code == E2EE_ERROR_AEAD_TAG)
        g_prefix_error (&error, "AEAD_TAG: ");
      return fail (error);
    }
  fwrite (plain, 1, len, stdout);
  e2ee_secret_free (plain, len + 1);
  return 0;
}

/* A mode-2 start from PRIV to PUB sealed by the ratchet directly, so the
 * plaintext is not checked as e2ee_envelope_v2_seal would check it. */
static int
cmd_seal_v2_raw (const char *priv, const char *account, const char *peer, const char *pub)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) sender = load_key (priv, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_autoptr (E2eeKey) remote = sender ? load_key (pub, E2EE_KEY_EXPECT_PUBLIC, &error) : NULL;
  g_autoptr (E2eeKey) sender_pub = NULL;
  g_autoptr (E2eeRatchet) session = NULL;
  g_autoptr (GBytes) msg = NULL;
  g_autoptr (GBytes) env = NULL;
  g_autofree char *armored = NULL;
  E2eeX3dhParty self, other;
  E2eeX3dhResult x3dh;
  E2eeEcSecret *ephemeral = NULL;
  GByteArray *buf;
  char *plain;
  gsize len;

  if (!remote)
    return fail (error);
  self = (E2eeX3dhParty) { sender, account, e2ee_v2_device_tag (sender), E2EE_V2_VERSIONS };
  other = (E2eeX3dhParty) { remote, peer, e2ee_v2_device_tag (remote), E2EE_V2_VERSIONS };
  if (!e2ee_x3dh_initiate (&self, &other, NULL, &ephemeral, &x3dh, &error))
    return fail (error);
  sender_pub = e2ee_key_public_copy (sender);
  session = e2ee_ratchet_new_initiator (&x3dh, ephemeral, sender_pub, E2EE_V2_VERSIONS,
                                        self.device, other.device);
  e2ee_x3dh_result_clear (&x3dh);
  plain = read_stdin (&len);
  msg = e2ee_ratchet_seal (session, (const guint8 *) plain, len, &error);
  e2ee_secret_free (plain, len);
  if (!msg)
    return fail (error);
  buf = g_byte_array_new ();
  g_byte_array_append (buf, (const guint8 []) { E2EE_ENVELOPE_V2_BASE }, 1);
  g_byte_array_append (buf, g_bytes_get_data (msg, NULL), (guint) g_bytes_get_size (msg));
  env = g_byte_array_free_to_bytes (buf);
  armored = e2ee_armor_encode (env);
  printf ("%s\n", armored);
  return 0;
}

/* A prekey record as a device would publish it (the private parts are
 * dropped: whoever uses the record cannot answer a start made with it). */
static int
cmd_prekey (const char *pub, const char *created)
{
  GError *error = NULL;
  g_autoptr (E2eeKey) identity = load_key (pub, E2EE_KEY_EXPECT_PUBLIC, &error);
  g_autoptr (E2eeSignKey) sign_key = identity ? e2ee_sign_key_generate (&error) : NULL;
  g_autoptr (E2eeEcSecret) secret = NULL;
  g_autoptr (GBytes) record = NULL;
  g_autofree char *sign_b64 = NULL;
  g_autofree char *record_b64 = NULL;
  guint8 xy[2 * E2EE_KEY_COORD_LEN];
  guint64 when = created ? g_ascii_strtoull (created, NULL, 10)
                         : (guint64) (g_get_real_time () / G_USEC_PER_SEC);

  if (!sign_key
      || !e2ee_prekey_create (sign_key, identity, e2ee_v2_device_tag (identity), 7, when,
                              E2EE_V2_VERSIONS, &secret, &record, &error))
    return fail (error);
  memcpy (xy, e2ee_key_get_x (e2ee_sign_key_get_public (sign_key)), E2EE_KEY_COORD_LEN);
  memcpy (xy + E2EE_KEY_COORD_LEN, e2ee_key_get_y (e2ee_sign_key_get_public (sign_key)),
          E2EE_KEY_COORD_LEN);
  sign_b64 = e2ee_b64url_encode (xy, sizeof xy);
  record_b64 = e2ee_b64url_encode (g_bytes_get_data (record, NULL), g_bytes_get_size (record));
  printf ("%s\n%s\n", sign_b64, record_b64);
  return 0;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;

  if (!e2ee_gcrypt_init (&error))
    return fail (error);
  if (argc == 2 && strcmp (argv[1], "keygen") == 0)
    return cmd_keygen ();
  if (argc == 3 && strcmp (argv[1], "public") == 0)
    return cmd_public (argv[2]);
  if (argc == 6 && strcmp (argv[1], "derive") == 0)
    return cmd_derive (argv[2], argv[3], argv[4], argv[5]);
  if (argc >= 8 && strcmp (argv[1], "seal") == 0)
    return cmd_seal (argv[2], argv[3], argv[4], argv[5], argv[6], argv + 7,
                     (guint) (argc - 7));
  if (argc == 6 && strcmp (argv[1], "open") == 0)
    return cmd_open (argv[2], argv[3], argv[4], argv[5]);
  if ((argc == 3 || argc == 4) && strcmp (argv[1], "prekey") == 0)
    return cmd_prekey (argv[2], argc == 4 ? argv[3] : NULL);
  if (argc == 6 && strcmp (argv[1], "seal-v2-raw") == 0)
    return cmd_seal_v2_raw (argv[2], argv[3], argv[4], argv[5]);
  /* ACCOUNT is the private key's owner's identifier, PEER the public
   * keys' ("<protocol>:<name>", PROTOCOL.md §4). */
  fprintf (stderr, "usage: %s keygen | public FILE | derive PRIV PUB ACCOUNT PEER | "
           "seal COUNTER PAD PRIV ACCOUNT PEER PUB... | open PRIV PUB ACCOUNT PEER | "
           "seal-v2-raw PRIV ACCOUNT PEER PUB | prekey PUB [CREATED]\n",
           argv[0]);
  return 2;
}
