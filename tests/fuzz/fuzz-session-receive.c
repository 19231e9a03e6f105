/* libFuzzer target: the session's receive path, which combines fragment
 * reassembly, offers and envelopes.  Bob (fixed key) knows Alice (fixed
 * key); each input line is one message handed to e2ee_context_receive, from
 * Alice, or from Mallory (a buddy with no key) when the line starts with
 * '!'.  A fresh context per input keeps runs independent.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-kdf.h"
#include "e2ee-session.h"
#include "e2ee-wipe.h"
#include "fuzz-common.h"

static E2eeKey *alice, *bob, *alice_public;
static guint8 k_send[E2EE_KEY_LEN], k_recv[E2EE_KEY_LEN];
static gboolean verbose;     /* E2EE_FUZZ_VERBOSE=1: print each result kind */

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_gcrypt ();
  verbose = g_getenv ("E2EE_FUZZ_VERBOSE") != NULL;
  alice = fuzz_fixed_key (FUZZ_ALICE_JWK);
  bob = fuzz_fixed_key (FUZZ_BOB_JWK);
  alice_public = e2ee_key_public_copy (alice);
  if (!e2ee_kdf_pair_keys (bob, FUZZ_PROTOCOL ":" FUZZ_BOB, alice, FUZZ_PROTOCOL ":" FUZZ_ALICE,
                           E2EE_CAPS_V1, E2EE_CAPS_V1, k_send, k_recv, NULL))
    abort ();
  return 0;
}

static E2eeContext *
bob_context (E2eeAccountRecord **account_out)
{
  E2eeContext *ctx = e2ee_context_new (e2ee_keyring_new ("/nonexistent/fuzz-keyring.json"));
  E2eeAccountRecord *account = e2ee_keyring_add_account (e2ee_context_get_keyring (ctx),
                                                         FUZZ_PROTOCOL, FUZZ_BOB, bob);
  GPtrArray *keys = g_ptr_array_new ();
  E2eeBuddyRecord *buddy;
  E2eeDeviceRecord *dev;

  g_ptr_array_add (keys, alice_public);
  FUZZ_CHECK (e2ee_context_learn_keys (ctx, account, FUZZ_ALICE, keys, NULL)
              == E2EE_LEARN_FIRST_CONTACT);
  g_ptr_array_unref (keys);

  /* Pre-fill the derived-key cache: no ECDH per input. */
  buddy = e2ee_account_lookup_buddy (account, FUZZ_ALICE);
  dev = buddy->devices->pdata[0];
  dev->have_keys = TRUE;
  dev->keys_local_caps = E2EE_CAPS_V1;
  dev->keys_remote_caps = E2EE_CAPS_V1;
  memcpy (dev->k_send, k_send, E2EE_KEY_LEN);
  memcpy (dev->k_recv, k_recv, E2EE_KEY_LEN);
  *account_out = account;
  return ctx;
}

static void
check_result (const E2eeRecvResult *r)
{
  switch (r->kind)
    {
    case E2EE_RECV_ERROR:
      FUZZ_CHECK (r->error != NULL && r->error->domain == E2EE_ERROR);
      FUZZ_CHECK (r->plaintext == NULL && r->reply == NULL);
      break;
    case E2EE_RECV_MESSAGE:
      FUZZ_CHECK (r->error == NULL && r->plaintext != NULL);
      FUZZ_CHECK (g_utf8_validate (r->plaintext, -1, NULL));
      FUZZ_CHECK (r->sender_kid != NULL);
      break;
    case E2EE_RECV_OFFER:
      /* An error only says why a key set was refused. */
      FUZZ_CHECK (r->plaintext == NULL);
      FUZZ_CHECK ((r->error != NULL) == (r->learned == E2EE_LEARN_REFUSED));
      break;
    case E2EE_RECV_WITHHELD:
      FUZZ_CHECK (r->plaintext == NULL && r->error != NULL);
      break;
    case E2EE_RECV_PLAINTEXT:
    case E2EE_RECV_PENDING:
      FUZZ_CHECK (r->error == NULL && r->plaintext == NULL);
      break;
    default:
      FUZZ_CHECK (!"unknown result kind");
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup (data, size);
  char **lines = g_strsplit (text, "\n", 32);
  E2eeAccountRecord *account = NULL;
  E2eeContext *ctx = bob_context (&account);
  gint64 now = 1000;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      const char *from = FUZZ_ALICE;
      E2eeRecvResult r;

      if (*line == '!')
        {
          from = "mallory@example.test";
          line++;
        }
      e2ee_context_receive (ctx, account, from, line, now++, &r);
      check_result (&r);
      if (verbose)
        fprintf (stderr, "line %u: kind %d%s%s\n", i, r.kind, r.error ? ": " : "",
                 r.error ? r.error->message : "");
      e2ee_recv_result_clear (&r);
    }
  e2ee_context_free (ctx);
  g_strfreev (lines);
  g_free (text);
  return 0;
}
