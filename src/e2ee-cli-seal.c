/* purple-e2ee seal | open: one protocol v2 envelope from the command line,
 * for interop and debugging.  Stateless: seal starts a fresh session per
 * recipient key (X3DH, PROTOCOL.md §4.3) and forgets it; open reads only
 * a session start without prekey (mode 2), the one kind a tool that keeps
 * no state and holds no prekey can answer.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-cli-seal.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-kdf.h"
#include "e2ee-v2own.h"
#include "e2ee-wipe.h"

typedef struct {
  const char *priv;
  const char *pub;
  const char *account;
  const char *peer;
  const char *prekey;        /* seal only */
  const char *signing_key;   /* seal only */
} CliArgs;

/* Each option at most once; --prekey and --signing-key only for seal and
 * only together. */
static gboolean
parse_args (int argc, char **argv, gboolean seal, CliArgs *a)
{
  memset (a, 0, sizeof *a);
  for (int i = 1; i < argc; i++)
    {
      const char **slot = NULL;

      if (i + 1 >= argc)
        return FALSE;
      if (strcmp (argv[i], "--private") == 0)
        slot = &a->priv;
      else if (strcmp (argv[i], "--public") == 0)
        slot = &a->pub;
      else if (strcmp (argv[i], "--account") == 0)
        slot = &a->account;
      else if (strcmp (argv[i], "--peer") == 0)
        slot = &a->peer;
      else if (seal && strcmp (argv[i], "--prekey") == 0)
        slot = &a->prekey;
      else if (seal && strcmp (argv[i], "--signing-key") == 0)
        slot = &a->signing_key;
      if (slot == NULL || *slot != NULL)
        return FALSE;
      *slot = argv[++i];
    }
  return a->priv && a->pub && a->account && a->peer && !a->prekey == !a->signing_key;
}

static guint64
now_seconds (void)
{
  return (guint64) (g_get_real_time () / G_USEC_PER_SEC);
}

/* The signing public key given as base64url(X || Y). */
static E2eeKey *
decode_signing_key (const char *b64, GError **error)
{
  gsize len = 0;
  g_autofree guint8 *raw = e2ee_b64url_decode (b64, strlen (b64), &len, NULL);
  E2eeKey *key;
  GError *local = NULL;

  if (raw == NULL || len != E2EE_V2_SIGN_PUB_LEN)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   _("--signing-key must be the base64url of X || Y (%d bytes)"),
                   E2EE_V2_SIGN_PUB_LEN);
      return NULL;
    }
  key = e2ee_key_new_public (raw, raw + E2EE_KEY_COORD_LEN, &local);
  if (key == NULL)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                   _("--signing-key is not a valid P-256 point: %s"), local->message);
      g_error_free (local);
    }
  return key;
}

/* Verifies the prekey record under @sign_pub for the one key of @keys it
 * names (its index in *@index).  The record's signature is checked before
 * its identity (e2ee-prekey.h), so a wrong key gives PREKEY_IDENTITY and
 * any other failure is the record's own, whichever key was tried. */
static E2eePrekey *
verify_prekey (const char *b64, const E2eeKey *sign_pub, GPtrArray *keys, guint *index,
               GError **error)
{
  gsize len = 0;
  g_autofree guint8 *record = e2ee_b64url_decode (b64, strlen (b64), &len, NULL);
  guint64 now = now_seconds ();

  if (record == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                           _("--prekey is not base64url"));
      return NULL;
    }
  for (guint i = 0; i < keys->len; i++)
    {
      const E2eeKey *key = keys->pdata[i];
      const E2eeKey *published = e2ee_key_get_sign_pub (key);
      GError *local = NULL;
      E2eePrekey *prekey = e2ee_prekey_verify (record, len, sign_pub, key,
                                               e2ee_v2_device_tag (key), now, &local);

      if (prekey != NULL)
        {
          /* A JWK that carries a signing key names the one its owner
           * publishes: a different --signing-key is someone else's. */
          if (published != NULL && !e2ee_key_equal (published, sign_pub))
            {
              e2ee_prekey_free (prekey);
              g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_BUNDLE,
                           _("--signing-key differs from the signing key published with "
                             "key %s"), e2ee_key_get_kid (key));
              return NULL;
            }
          *index = i;
          return prekey;
        }
      if (!g_error_matches (local, E2EE_ERROR, E2EE_ERROR_PREKEY_IDENTITY))
        {
          g_propagate_prefixed_error (error, local, _("--prekey: "));
          return NULL;
        }
      g_error_free (local);
    }
  g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_PREKEY_IDENTITY,
                       _("--prekey is signed for none of the --public keys"));
  return NULL;
}

/* A new initiator session from @local to @remote: mode 1 with @prekey,
 * mode 2 without. */
static E2eeRatchet *
start_session (const E2eeKey *local, const char *account, const E2eeKey *remote,
               const char *peer, const E2eePrekey *prekey, GError **error)
{
  E2eeX3dhParty self = { local, account, e2ee_v2_device_tag (local), E2EE_V2_VERSIONS };
  E2eeX3dhParty other = { remote, peer, e2ee_v2_device_tag (remote),
                          prekey ? prekey->versions : E2EE_V2_VERSIONS };
  E2eeX3dhResult x3dh;
  E2eeEcSecret *ephemeral = NULL;
  g_autoptr (E2eeKey) self_pub = NULL;
  E2eeRatchet *session;

  if (!e2ee_x3dh_initiate (&self, &other, prekey, &ephemeral, &x3dh, error))
    return NULL;
  self_pub = e2ee_key_public_copy (local);
  /* The session takes the ephemeral key. */
  session = e2ee_ratchet_new_initiator (&x3dh, ephemeral, self_pub, E2EE_V2_VERSIONS,
                                        self.device, other.device);
  e2ee_x3dh_result_clear (&x3dh);
  return session;
}

int
e2ee_cli_seal (int argc, char **argv)
{
  CliArgs a;
  GError *error = NULL;
  g_autoptr (E2eeKey) local = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  g_autoptr (E2eeKey) sign_pub = NULL;
  g_autoptr (E2eePrekey) prekey = NULL;
  g_autoptr (GPtrArray) sessions = NULL;
  g_autoptr (GBytes) envelope = NULL;
  guint prekey_index = G_MAXUINT;
  char *input = NULL;
  gsize len = 0;

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee seal --private FILE --public FILE "
                       "--account ID --peer ID\n"
                       "                         [--prekey B64 --signing-key B64]\n"
                       "Encrypts stdin (UTF-8 text) into one armored protocol v2 envelope:\n"
                       "a session start from the private key's owner on account ID\n"
                       "(\"<protocol>:<name>\") to the public key, or to every key of a JWK\n"
                       "Set (one slot each), of account --peer.  Without --prekey the start\n"
                       "uses no prekey (mode 2): not forward-secret, whoever obtains the\n"
                       "recipient's key later reads it.  --prekey (a signed prekey record,\n"
                       "base64url) with --signing-key (the recipient's signing public key,\n"
                       "base64url of X || Y) is verified first and starts the key it names\n"
                       "with it (mode 1); the other keys get mode 2.  Nothing is stored:\n"
                       "every run starts new sessions.\n"));
      return 0;
    }
  if (!parse_args (argc, argv, TRUE, &a))
    return e2ee_cli_usage_error (_("seal needs --private FILE --public FILE --account ID "
                                   "--peer ID, each once, and --prekey B64 only with "
                                   "--signing-key B64"));
  if (!e2ee_kdf_account_valid (a.account, &error) || !e2ee_kdf_account_valid (a.peer, &error)
      || !(local = e2ee_cli_load_key (a.priv, E2EE_KEY_EXPECT_PRIVATE, &error))
      || !(keys = e2ee_cli_load_public_keys (a.pub, &error)))
    return e2ee_cli_fail (error);
  if (keys->len == 0 || keys->len > E2EE_ENVELOPE_V2_MAX_SLOTS)
    return e2ee_cli_fail (g_error_new (E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE,
                                       _("an envelope goes to 1 to %d keys, not %u"),
                                       E2EE_ENVELOPE_V2_MAX_SLOTS, keys->len));
  if (a.prekey != NULL
      && (!(sign_pub = decode_signing_key (a.signing_key, &error))
          || !(prekey = verify_prekey (a.prekey, sign_pub, keys, &prekey_index, &error))))
    return e2ee_cli_fail (error);
  if (!(input = e2ee_cli_read_input (NULL, &len, &error)))
    return e2ee_cli_fail (error);
  if (!e2ee_cli_check_plaintext (input, len, &error))
    {
      e2ee_secret_free (input, len + 1);
      return e2ee_cli_fail (error);
    }

  sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_ratchet_free);
  for (guint i = 0; i < keys->len; i++)
    {
      E2eeRatchet *session = start_session (local, a.account, keys->pdata[i], a.peer,
                                            i == prekey_index ? prekey : NULL, &error);
      if (session == NULL)
        {
          g_prefix_error (&error, _("key %s: "), e2ee_key_get_kid (keys->pdata[i]));
          break;
        }
      g_ptr_array_add (sessions, session);
    }
  /* @input was read NUL-terminated (e2ee_cli_read_input) and holds no NUL. */
  if (error == NULL)
    envelope = e2ee_envelope_v2_seal ((E2eeRatchet **) sessions->pdata, sessions->len,
                                      input, 0, &error);
  e2ee_secret_free (input, len + 1);
  /* The sessions are wiped as they are freed: nothing of them is kept. */
  g_clear_pointer (&sessions, g_ptr_array_unref);
  if (envelope == NULL)
    return e2ee_cli_fail (error);
  {
    g_autofree char *armored = e2ee_armor_encode (envelope);
    g_print ("%s\n", armored);
  }
  return 0;
}

/* ---- open ------------------------------------------------------------- */

typedef struct {
  gboolean saw_message;      /* a slot for us continues a session */
  gboolean saw_prekey_start; /* a slot for us starts with a prekey */
  gboolean saw_start;        /* a mode-2 start for us */
  gboolean sender_matched;   /* ... whose initiator is one of --public */
  GError *auth_error;        /* the first failure after a key matched */
} OpenState;

static void
keep_auth_error (OpenState *st, GError *error)
{
  if (st->auth_error == NULL)
    st->auth_error = error;
  else
    g_error_free (error);
}

/* Opens slot @i, a start (type 2) for us, with each sender key it may
 * come from.  Returns the text (e2ee_string_free) or NULL. */
static char *
open_start_slot (const E2eeEnvelopeV2 *env, guint i, const E2eeKey *local,
                 const char *account, GPtrArray *senders, const char *peer, OpenState *st)
{
  const E2eeEnvelopeV2Slot *slot = &env->slots[i];
  E2eeV2Message msg;
  GError *error = NULL;
  char *text = NULL;

  memset (&msg, 0, sizeof msg);
  if (!e2ee_v2_message_parse (slot->message, slot->message_len, &msg, &error))
    {
      keep_auth_error (st, error);
      return NULL;
    }
  if (msg.mode == E2EE_X3DH_MODE_PREKEY)
    {
      st->saw_prekey_start = TRUE;
      e2ee_v2_message_clear (&msg);
      return NULL;
    }
  st->saw_start = TRUE;
  for (guint k = 0; k < senders->len && text == NULL; k++)
    {
      const E2eeKey *sender = senders->pdata[k];
      E2eeX3dhParty self = { local, account, e2ee_v2_device_tag (local), E2EE_V2_VERSIONS };
      E2eeX3dhParty other = { sender, peer, msg.sender_device, msg.versions };
      E2eeX3dhResult x3dh;
      E2eeRatchet *session;

      /* The start names its initiator's identity: only that key. */
      if (e2ee_v2_device_tag (sender) != msg.sender_device
          || !e2ee_key_equal (sender, msg.initiator))
        continue;
      st->sender_matched = TRUE;
      if (!e2ee_x3dh_respond (&self, &other, E2EE_X3DH_MODE_NO_PREKEY, NULL, 0, msg.dh_key,
                              &x3dh, &error))
        {
          keep_auth_error (st, error);
          error = NULL;
          continue;
        }
      session = e2ee_ratchet_new_responder (&x3dh, msg.dh_key, self.device, other.device);
      e2ee_x3dh_result_clear (&x3dh);
      text = e2ee_envelope_v2_open (env, i, &session, now_seconds (), NULL, &error);
      e2ee_ratchet_free (session);
      if (text == NULL)
        {
          keep_auth_error (st, error);
          error = NULL;
        }
    }
  e2ee_v2_message_clear (&msg);
  return text;
}

/* Why nothing opened, most telling first. */
static GError *
open_failure (OpenState *st)
{
  if (st->auth_error)
    {
      GError *error = g_steal_pointer (&st->auth_error);
      if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG))
        g_prefix_error (&error, _("the envelope does not authenticate for these keys and "
                                  "account identifiers: "));
      return error;
    }
  if (st->saw_start && !st->sender_matched)
    return g_error_new_literal (E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER,
                                _("the envelope was not sent by the given key"));
  if (st->saw_prekey_start)
    return g_error_new_literal (E2EE_ERROR, E2EE_ERROR_V2_START,
                                _("the envelope starts a session with a signed prekey "
                                  "(mode 1), whose private part only the recipient's "
                                  "plugin holds: the command-line tool cannot open it"));
  return g_error_new_literal (E2EE_ERROR, E2EE_ERROR_V2_NO_SESSION,
                              _("the envelope continues a session (it is not a session "
                                "start); the command-line tool keeps no session state"));
}

int
e2ee_cli_open (int argc, char **argv)
{
  CliArgs a;
  GError *error = NULL;
  g_autoptr (E2eeKey) local = NULL;
  g_autoptr (GPtrArray) senders = NULL;
  g_autoptr (GBytes) raw = NULL;
  E2eeEnvelopeV2 env;
  OpenState st = { 0 };
  const guint8 *data;
  gsize raw_len;
  guint32 own_tag;
  gboolean for_us = FALSE;
  char *input = NULL, *text = NULL;
  gsize len = 0;

  if (e2ee_cli_wants_help (argc, argv))
    {
      g_print ("%s", _("Usage: purple-e2ee open --private FILE --public FILE "
                       "--account ID --peer ID\n"
                       "Decrypts one armored protocol v2 envelope from stdin: a session\n"
                       "start without prekey (mode 2, as seal makes it) sent by the owner\n"
                       "of the public key (or a key of a JWK Set) on account --peer to the\n"
                       "private key's owner on account --account.  Starts with a prekey\n"
                       "(mode 1) and later messages of a session need the state only the\n"
                       "plugin keeps; version 1 envelopes are no longer read.\n"));
      return 0;
    }
  if (!parse_args (argc, argv, FALSE, &a))
    return e2ee_cli_usage_error (_("open needs --private FILE --public FILE --account ID "
                                   "--peer ID, each once"));
  if (!e2ee_kdf_account_valid (a.account, &error) || !e2ee_kdf_account_valid (a.peer, &error)
      || !(local = e2ee_cli_load_key (a.priv, E2EE_KEY_EXPECT_PRIVATE, &error))
      || !(senders = e2ee_cli_load_public_keys (a.pub, &error))
      || !(input = e2ee_cli_read_input (NULL, &len, &error)))
    return e2ee_cli_fail (error);
  /* One armored line: a NUL would end it early for the decoder and hide
   * whatever follows. */
  if (memchr (input, '\0', len) != NULL)
    {
      e2ee_secret_free (input, len + 1);
      return e2ee_cli_fail (g_error_new_literal (E2EE_ERROR, E2EE_ERROR_ARMOR,
                                                 _("the input contains a NUL byte")));
    }
  raw = e2ee_armor_decode (input, &error);
  e2ee_secret_free (input, len + 1);
  if (!raw)
    return e2ee_cli_fail (error);
  data = g_bytes_get_data (raw, &raw_len);
  if (raw_len > 0 && data[0] >> 4 == 1)
    return e2ee_cli_fail (g_error_new_literal (E2EE_ERROR, E2EE_ERROR_V1_RETIRED,
                                               _("a protocol version 1 envelope: version 1 "
                                                 "is retired and no longer read")));
  if (!e2ee_envelope_v2_parse (data, raw_len, &env, &error))
    return e2ee_cli_fail (error);

  /* Device tags may collide: every slot for our tag is tried. */
  own_tag = e2ee_v2_device_tag (local);
  for (guint i = 0; i < env.n_slots && text == NULL; i++)
    {
      if (env.slots[i].recipient_device != own_tag)
        continue;
      for_us = TRUE;
      if (env.slots[i].type != E2EE_V2_TYPE_START)
        st.saw_message = TRUE;
      else
        text = open_start_slot (&env, i, local, a.account, senders, a.peer, &st);
    }
  e2ee_envelope_v2_clear (&env);
  if (!for_us)
    return e2ee_cli_fail (g_error_new_literal (E2EE_ERROR, E2EE_ERROR_NOT_FOR_US,
                                               _("the envelope is not addressed to this key")));
  if (text == NULL)
    return e2ee_cli_fail (open_failure (&st));
  g_clear_error (&st.auth_error);
  len = strlen (text);
  /* The envelope module refuses these already; the tool's promise is
   * checked here as well, as for seal's input. */
  if (!e2ee_cli_check_plaintext (text, len, &error))
    {
      e2ee_string_free (text);
      return e2ee_cli_fail (error);
    }
  fwrite (text, 1, len, stdout);
  e2ee_string_free (text);
  return 0;
}
