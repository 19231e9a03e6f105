/* Writes the seed corpora under tests/fuzz/corpus/<target>/ from the fixed
 * keys the targets use: valid inputs of every kind plus a few broken ones.
 * Run once after changing a format: gen-corpus <corpus folder>.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gstdio.h>

#include "e2ee-b64.h"
#include "e2ee-envelope.h"
#include "e2ee-kdf.h"
#include "e2ee-offer.h"
#include "e2ee-session.h"
#include "e2ee-wipe.h"
#include "fuzz-common.h"

static const char *root;

static void
put (const char *target, const char *name, const void *data, gsize len)
{
  char *folder = g_build_filename (root, target, NULL);
  char *path = g_build_filename (folder, name, NULL);
  GError *error = NULL;

  g_mkdir_with_parents (folder, 0755);
  if (!g_file_set_contents (path, data, (gssize) len, &error))
    g_error ("%s", error->message);
  g_free (path);
  g_free (folder);
}

static void
put_text (const char *target, const char *name, const char *text)
{
  put (target, name, text, strlen (text));
}

static GPtrArray *
public_set (E2eeKey *a, E2eeKey *b)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

  g_ptr_array_add (keys, e2ee_key_public_copy (a));
  if (b)
    g_ptr_array_add (keys, e2ee_key_public_copy (b));
  return keys;
}

static GBytes *
seal (E2eeKey *alice, E2eeKey *bob, guint n, gsize pad, guint64 counter, const char *text)
{
  guint8 k_ab[E2EE_KEY_LEN], k_ba[E2EE_KEY_LEN], other[E2EE_KEY_LEN];
  E2eeRecipient rcpt[3] = { 0 };
  E2eeSealParams p = { 0 };
  GBytes *env;

  if (!e2ee_kdf_pair_keys (alice, FUZZ_PROTOCOL ":" FUZZ_ALICE, bob, FUZZ_PROTOCOL ":" FUZZ_BOB,
                           E2EE_CAPS_V1, E2EE_CAPS_V1, k_ab, k_ba, NULL))
    abort ();
  memset (other, 7, sizeof other);
  memcpy (rcpt[0].id, e2ee_key_get_device_id (bob), E2EE_DEVICE_ID_LEN);
  rcpt[0].key = k_ab;
  for (guint i = 1; i < 3; i++)
    {
      memset (rcpt[i].id, (int) (0xa0 + i), E2EE_DEVICE_ID_LEN);
      rcpt[i].key = other;
    }
  p.caps = E2EE_CAPS_V1;
  memcpy (p.sender_id, e2ee_key_get_device_id (alice), E2EE_DEVICE_ID_LEN);
  p.counter = counter;
  p.recipients = rcpt;
  p.n_recipients = n;
  p.pad_block = pad;
  env = e2ee_envelope_seal (&p, (const guint8 *) text, strlen (text), NULL);
  if (env == NULL)
    abort ();
  return env;
}

static void
envelopes (E2eeKey *alice, E2eeKey *bob)
{
  GBytes *one = seal (alice, bob, 1, 0, 1000, "hello Bob");
  GBytes *three = seal (alice, bob, 3, 0, 1001, "to three devices");
  GBytes *padded = seal (alice, bob, 2, 64, 1002, "padded");
  gsize len;
  const guint8 *d = g_bytes_get_data (one, &len);
  char *armored;
  guint8 *bad;

  put ("envelope", "one-recipient.bin", d, len);
  put ("envelope", "truncated.bin", d, len - 5);
  bad = g_memdup2 (d, len);
  bad[0] = 2 << 4 | E2EE_CAPS_V1; /* version nibble 2 */
  put ("envelope", "version-2.bin", bad, len);
  g_free (bad);
  d = g_bytes_get_data (three, &len);
  put ("envelope", "three-recipients.bin", d, len);
  d = g_bytes_get_data (padded, &len);
  put ("envelope", "padded.bin", d, len);
  armored = e2ee_armor_encode (one);
  put_text ("envelope", "armored.txt", armored);
  put_text ("session-receive", "envelope.txt", armored);
  g_free (armored);
  armored = e2ee_armor_encode (three);
  put_text ("envelope", "armored-three.txt", armored);
  put_text ("session-receive", "envelope-three.txt", armored);
  g_free (armored);
  armored = e2ee_armor_encode (padded);
  put_text ("session-receive", "envelope-padded.txt", armored);
  {
    /* Fragments, as a budget-limited transport would carry them. */
    char **pieces = e2ee_fragment_split (armored, 60, NULL);
    char *joined = g_strjoinv ("\n", pieces);
    char *mixed = g_strdup_printf ("%s\n!%s\n%s", pieces[1], pieces[0], joined);
    put_text ("session-receive", "fragments.txt", joined);
    put_text ("session-receive", "fragments-mixed.txt", mixed);
    put_text ("fragment", "pieces.txt", joined);
    g_free (mixed);
    g_free (joined);
    g_strfreev (pieces);
  }
  g_free (armored);
  put_text ("envelope", "not-base64.txt", E2EE_ARMOR_PREFIX "AAAA*AAA");
  put_text ("envelope", "empty-armor.txt", E2EE_ARMOR_PREFIX);
  g_bytes_unref (one);
  g_bytes_unref (three);
  g_bytes_unref (padded);
}

static void
fragments (void)
{
  put_text ("fragment", "one-of-one.txt", "?E2F:0000abcd:1/1:hello");
  put_text ("fragment", "two.txt", "a?E2F:0000abcd:2/2:world\nb?E2F:0000abcd:1/2:hello ");
  put_text ("fragment", "split.txt", "\x28" "some text that is long enough to be split in pieces");
  put_text ("fragment", "bad-index.txt", "?E2F:0000abcd:3/2:x");
  put_text ("fragment", "leading-zero.txt", "?E2F:0000abcd:01/2:x");
  put_text ("fragment", "upper-hex.txt", "?E2F:0000ABCD:1/2:x");
  put_text ("fragment", "flood.txt",
            "?E2F:00000001:1/9:a\n?E2F:00000002:1/9:a\n?E2F:00000003:1/9:a\n"
            "?E2F:00000004:1/9:a\n?E2F:00000005:1/9:a\n?E2F:00000006:1/9:a");
}

static void
keys (E2eeKey *alice, E2eeKey *bob)
{
  GPtrArray *both = public_set (alice, bob);
  GPtrArray *one = public_set (alice, NULL);
  char *s;

  s = e2ee_key_to_jwk (alice, TRUE, FALSE);
  put_text ("jwk", "private.json", s);
  e2ee_string_free (s);
  s = e2ee_key_to_jwk (alice, TRUE, TRUE);
  put_text ("jwk", "private-meta.json", s);
  e2ee_string_free (s);
  s = e2ee_key_to_jwk (bob, FALSE, TRUE);
  put_text ("jwk", "public-meta.json", s);
  e2ee_string_free (s);
  s = e2ee_key_to_jwk (bob, FALSE, FALSE);
  put_text ("jwk", "public.json", s);
  e2ee_string_free (s);
  put_text ("jwk", "wrong-curve.json",
            "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}");
  put_text ("jwk", "duplicate.json", "{\"kty\":\"EC\",\"kty\":\"EC\"}");

  s = e2ee_keyset_to_json (both);
  put_text ("keyset", "two.json", s);
  g_free (s);
  s = e2ee_keyset_to_json (one);
  put_text ("keyset", "one.json", s);
  g_free (s);
  put_text ("keyset", "empty.json", "{\"keys\":[]}");

  s = e2ee_offer_compact_encode (both);
  put_text ("offer", "compact.txt", s);
  g_free (s);
  s = e2ee_offer_status_replace ("Away until Monday", both);
  put_text ("offer", "status.txt", s);
  g_free (s);
  s = e2ee_offer_profile_replace ("I like tea.\nCall me.", both);
  put_text ("offer", "profile.txt", s);
  {
    /* As an HTML profile field shows it. */
    char **lines = g_strsplit (s, "\n", -1);
    char *html = g_strjoinv ("<br>", lines);
    put_text ("offer", "profile-html.txt", html);
    g_free (html);
    g_strfreev (lines);
  }
  g_free (s);
  s = e2ee_offer_inband (E2EE_OFFER_KIND_OFFER, one);
  put_text ("offer", "inband-offer.txt", s);
  put_text ("session-receive", "offer.txt", s);
  g_free (s);
  s = e2ee_offer_inband (E2EE_OFFER_KIND_ANSWER, both);
  put_text ("offer", "inband-answer.txt", s);
  put_text ("session-receive", "answer.txt", s);
  g_free (s);
  put_text ("session-receive", "plain.txt", "just words\n!and more words");
  g_ptr_array_unref (both);
  g_ptr_array_unref (one);
}

static void
keyring (E2eeKey *alice, E2eeKey *bob)
{
  char *tmpdir = g_dir_make_tmp ("e2ee-gen-XXXXXX", NULL);
  char *path = g_build_filename (tmpdir, "keyring.json", NULL);
  char *backup = g_strconcat (path, "~", NULL);
  char *lock = g_strconcat (path, ".lock", NULL);
  E2eeContext *ctx = e2ee_context_new (e2ee_keyring_new (path));
  E2eeAccountRecord *account;
  GPtrArray *set = public_set (alice, NULL);
  char **pieces;
  char *text = NULL;
  gsize len = 0;

  account = e2ee_keyring_add_account (e2ee_context_get_keyring (ctx), FUZZ_PROTOCOL,
                                      FUZZ_BOB, bob);
  e2ee_context_learn_keys (ctx, account, FUZZ_ALICE, set, NULL);
  e2ee_context_set_policy (ctx, account, "carol@example.test", E2EE_POLICY_REQUIRED);
  /* Derived keys and a counter, so those records are in the file too. */
  pieces = e2ee_context_encrypt (ctx, account, FUZZ_ALICE, "x", 0, NULL);
  g_strfreev (pieces);
  if (!e2ee_keyring_save (e2ee_context_get_keyring (ctx), NULL)
      || !g_file_get_contents (path, &text, &len, NULL))
    abort ();
  put ("keyring", "keyring.json", text, len);
  put ("keyring", "truncated.json", text, len / 2);
  put_text ("keyring", "empty-object.json", "{}");
  put_text ("keyring", "minimal.json", "{\"format\":\"purple-e2ee-keyring\",\"version\":1,\"accounts\":[]}");
  e2ee_string_free (text);
  e2ee_context_free (ctx);
  g_unlink (path);
  g_unlink (backup);
  g_unlink (lock);
  g_rmdir (tmpdir);
  g_ptr_array_unref (set);
  g_free (lock);
  g_free (backup);
  g_free (path);
  g_free (tmpdir);
}

int
main (int argc, char **argv)
{
  E2eeKey *alice, *bob;

  if (argc != 2)
    {
      fprintf (stderr, "usage: gen-corpus FOLDER\n");
      return 2;
    }
  root = argv[1];
  fuzz_init_gcrypt ();
  alice = fuzz_fixed_key (FUZZ_ALICE_JWK);
  bob = fuzz_fixed_key (FUZZ_BOB_JWK);
  envelopes (alice, bob);
  fragments ();
  keys (alice, bob);
  keyring (alice, bob);
  e2ee_key_unref (alice);
  e2ee_key_unref (bob);
  return 0;
}
