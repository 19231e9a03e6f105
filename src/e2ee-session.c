/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-keyset.h"
#include "e2ee-error.h"
#include "e2ee-session-private.h"
#include "e2ee-wipe.h"

/* Reassembly bounds: per conversation, in all, per message, seconds. */
#define FRAGMENTS_PER_BUDDY 4
#define FRAGMENTS_TOTAL 64
#define FRAGMENT_MAX_BYTES (96 * 1024)
#define FRAGMENT_TIMEOUT_S 120

E2eeContext *
e2ee_context_new (E2eeKeyring *keyring)
{
  E2eeContext *ctx = g_new0 (E2eeContext, 1);

  ctx->keyring = keyring;
  ctx->default_policy = E2EE_POLICY_OPPORTUNISTIC;
  ctx->reassembler = e2ee_reassembler_new (FRAGMENTS_PER_BUDDY, FRAGMENTS_TOTAL,
                                           FRAGMENT_MAX_BYTES, FRAGMENT_TIMEOUT_S);
  e2ee_reassembler_set_fair (ctx->reassembler, TRUE);
  ctx->withheld = e2ee_withheld_new (E2EE_WITHHELD_PER_BUDDY, E2EE_WITHHELD_TOTAL);
  ctx->strangers = e2ee_strangers_new (E2EE_STRANGERS_MAX);
  ctx->malformed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  ctx->v2 = e2ee_v2store_new (keyring);
  ctx->v2_own = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) e2ee_v2own_free);
  ctx->v2_peers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) e2ee_v2peer_free);
  e2ee_session_v2_init (ctx);
  return ctx;
}

void
e2ee_context_free (E2eeContext *ctx)
{
  if (ctx == NULL)
    return;
  e2ee_reassembler_free (ctx->reassembler);
  e2ee_withheld_free (ctx->withheld);
  e2ee_strangers_free (ctx->strangers);
  g_hash_table_destroy (ctx->malformed);
  g_hash_table_destroy (ctx->v2_peers);
  g_hash_table_destroy (ctx->v2_own);
  e2ee_v2store_free (ctx->v2);
  e2ee_keyring_free (ctx->keyring);
  g_free (ctx);
}

E2eeKeyring *
e2ee_context_get_keyring (E2eeContext *ctx)
{
  return ctx->keyring;
}

void
e2ee_context_set_default_policy (E2eeContext *ctx, E2eePolicy policy)
{
  ctx->default_policy = policy == E2EE_POLICY_DEFAULT ? E2EE_POLICY_OPPORTUNISTIC : policy;
}

E2eePolicy
e2ee_context_get_default_policy (E2eeContext *ctx)
{
  return ctx->default_policy;
}

void
e2ee_context_set_padding (E2eeContext *ctx, gsize block)
{
  ctx->pad_block = MIN (block, 1024);
}

void
e2ee_context_set_changed_func (E2eeContext *ctx, E2eeChangedFunc func, gpointer user_data)
{
  ctx->changed = func;
  ctx->changed_data = user_data;
}

void
e2ee_context_set_commit_func (E2eeContext *ctx, E2eeCommitFunc func, gpointer user_data)
{
  ctx->commit = func;
  ctx->commit_data = user_data;
}

gboolean
e2ee_session_commit (E2eeContext *ctx, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (ctx->commit == NULL)
    {
      if (ctx->changed)
        ctx->changed (ctx, ctx->changed_data);
      return TRUE;
    }
  if (ctx->commit (ctx, ctx->commit_data, &local))
    return TRUE;
  if (local == NULL)
    local = g_error_new_literal (E2EE_ERROR, E2EE_ERROR_KEYRING_IO,
                                 "the keyring could not be saved");
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* For changes whose failure to persist only loses a decision the user is
 * told about elsewhere: the error is dropped here. */
void
e2ee_session_notify_changed (E2eeContext *ctx)
{
  (void) e2ee_session_commit (ctx, NULL);
}
#define notify_changed e2ee_session_notify_changed
#define trust_is_usable e2ee_session_trust_usable
#define count_devices e2ee_session_count_devices

E2eeWithheld *
e2ee_session_withheld (E2eeContext *ctx)
{
  return ctx->withheld;
}

E2eeStrangers *
e2ee_session_strangers (E2eeContext *ctx)
{
  return ctx->strangers;
}

/* ---- accounts and keys ------------------------------------------------ */

static E2eeAccountRecord *
ensure_account (E2eeContext *ctx, const char *protocol, const char *name, gboolean save,
                gboolean *created, GError **error)
{
  E2eeAccountRecord *account;
  g_autoptr (E2eeKey) identity = NULL;

  if (created)
    *created = FALSE;
  if (!e2ee_session_check_name (protocol, error) || !e2ee_session_check_name (name, error))
    return NULL;
  account = e2ee_keyring_lookup_account (ctx->keyring, protocol, name);
  if (account == NULL)
    {
      if (!(identity = e2ee_key_generate (error)))
        return NULL;
      account = e2ee_keyring_add_account (ctx->keyring, protocol, name, identity);
      if (created)
        *created = TRUE;
      account->identity_unsaved = save;
      notify_changed (ctx);
    }
  if (account->identity_unsaved)
    {
      /* An identity nobody can load again would be a new device at every
       * start: it is neither published nor used until it is on disk. */
      GError *local = NULL;

      if (!e2ee_keyring_save (ctx->keyring, &local))
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_IDENTITY_UNSAVED,
                       "the new identity key of %s could not be saved, so it is not "
                       "used: %s", name, local->message);
          g_error_free (local);
          return NULL;
        }
      account->identity_unsaved = FALSE;
    }
  return account;
}

E2eeAccountRecord *
e2ee_context_ensure_account (E2eeContext *ctx, const char *protocol, const char *name,
                             gboolean *created, GError **error)
{
  return ensure_account (ctx, protocol, name, FALSE, created, error);
}

E2eeAccountRecord *
e2ee_context_ensure_account_saved (E2eeContext *ctx, const char *protocol, const char *name,
                                   gboolean *created, GError **error)
{
  return ensure_account (ctx, protocol, name, TRUE, created, error);
}

static gboolean
identity_usable (E2eeAccountRecord *account, GError **error)
{
  if (!account->identity_unsaved)
    return TRUE;
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_IDENTITY_UNSAVED,
               "the identity key of %s has not been saved, so it is not used",
               account->name);
  return FALSE;
}

GPtrArray *
e2ee_context_own_keyset (E2eeContext *ctx, E2eeAccountRecord *account)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  E2eeBuddyRecord *self = e2ee_account_lookup_buddy (account, account->name);

  if (account->identity_unsaved)
    return keys;
  g_ptr_array_add (keys, e2ee_session_v2_publish_key (ctx, account));
  /* Confirmed own devices only: a pending one is never republished. */
  for (guint i = 0; self && i < self->devices->len && keys->len < E2EE_KEYSET_MAX; i++)
    {
      E2eeDeviceRecord *dev = self->devices->pdata[i];
      if (trust_is_usable (dev->trust) && !e2ee_key_equal (dev->key, account->identity))
        g_ptr_array_add (keys, e2ee_session_v2_device_key (ctx, account, account->name,
                                                           dev->key));
    }
  return keys;
}

/* ---- sending ---------------------------------------------------------- */

static E2eePolicy
effective_policy (E2eeContext *ctx, E2eeBuddyRecord *buddy)
{
  if (buddy && buddy->policy != E2EE_POLICY_DEFAULT)
    return buddy->policy;
  return ctx->default_policy;
}

guint
e2ee_session_count_devices (E2eeBuddyRecord *buddy, gboolean usable)
{
  guint n = 0;

  for (guint i = 0; buddy && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];
      if (usable ? trust_is_usable (dev->trust) : dev->trust != E2EE_TRUST_REJECTED)
        n++;
    }
  return n;
}

E2eeSendDecision
e2ee_context_send_decision (E2eeContext *ctx, E2eeAccountRecord *account,
                            const char *buddy_name, GError **error)
{
  E2eeBuddyRecord *buddy;
  E2eePolicy policy;

  if (!e2ee_session_check_name (buddy_name, error))
    return E2EE_SEND_BLOCK;
  buddy = e2ee_account_lookup_buddy (account, buddy_name);
  policy = effective_policy (ctx, buddy);
  if (policy == E2EE_POLICY_OFF)
    return E2EE_SEND_PLAINTEXT;
  if (buddy && buddy->key_changed)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED,
                   "the encryption key of %s has changed; compare safety numbers "
                   "(/e2ee verify), then accept the new key with /e2ee trust DEVICE, "
                   "or start over with /e2ee reset", buddy_name);
      return E2EE_SEND_BLOCK;
    }
  if (count_devices (buddy, TRUE) > 0)
    return E2EE_SEND_ENCRYPT;
  if (buddy && buddy->devices->len > 0)
    {
      /* Rejected is not absent: once a buddy has had a key we never fall
       * back to plaintext unless the user turns encryption off. */
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_UNTRUSTED,
                   "no device of %s is accepted (%u rejected, %u awaiting a decision); "
                   "accept one with /e2ee trust DEVICE, or send unencrypted with "
                   "/e2ee off", buddy_name,
                   buddy->devices->len - count_devices (buddy, FALSE),
                   count_devices (buddy, FALSE));
      return E2EE_SEND_BLOCK;
    }
  if (policy == E2EE_POLICY_REQUIRED)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_NO_KEY,
                   "no encryption key is known for %s", buddy_name);
      return E2EE_SEND_BLOCK;
    }
  return E2EE_SEND_PLAINTEXT;
}

char **
e2ee_context_encrypt (E2eeContext *ctx, E2eeAccountRecord *account,
                      const char *buddy_name, const char *plaintext, gsize budget,
                      GError **error)
{
  GBytes *envelope = NULL;
  char *armored = NULL;
  char **pieces = NULL;

  if (!identity_usable (account, error))
    return NULL;
  if (e2ee_context_send_decision (ctx, account, buddy_name, error) != E2EE_SEND_ENCRYPT)
    {
      if (error && *error == NULL)
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_POLICY,
                     "encryption is turned off for %s", buddy_name);
      return NULL;
    }
  envelope = e2ee_session_v2_seal (ctx, account, buddy_name, plaintext, error);
  if (envelope == NULL)
    {
      /* Sessions may have moved (a start made, a key drawn): saved
       * anyway, so no message number is ever used twice. */
      e2ee_session_notify_changed (ctx);
      return NULL;
    }
  armored = e2ee_armor_encode (envelope);
  g_bytes_unref (envelope);
  pieces = budget ? e2ee_fragment_split (armored, budget, error)
                  : g_strdupv ((char *[]) { armored, NULL });
  g_free (armored);
  /* Save before send: the sessions' new state is on disk before any
   * piece leaves, so a crash can lose a message but never send two
   * under one message key. */
  if (pieces != NULL && !e2ee_session_commit (ctx, error))
    g_clear_pointer (&pieces, g_strfreev);
  return pieces;
}

char **
e2ee_wire_pieces (const char *text, gsize budget, GError **error)
{
  g_autofree char *data = NULL;
  const char *end;

  if (budget == 0 || strlen (text) <= budget)
    return g_strdupv ((char *[]) { (char *) text, NULL });
  if (!e2ee_offer_inband_detect (text))
    return e2ee_fragment_split (text, budget, error);
  /* An offer's key data ends at the first white space; the sentence after
   * it is for people and would not survive a split at a space. */
  end = text + strlen (E2EE_OFFER_PREFIX);
  while (*end && !g_ascii_isspace (*end))
    end++;
  data = g_strndup (text, (gsize) (end - text));
  if (strlen (data) <= budget)
    return g_strdupv ((char *[]) { data, NULL });
  return e2ee_fragment_split (data, budget, error);
}

gboolean
e2ee_context_set_policy (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                         E2eePolicy policy)
{
  E2eeBuddyRecord *buddy;

  if (!e2ee_name_is_valid (buddy_name))
    return FALSE;
  buddy = e2ee_account_ensure_buddy (account, buddy_name);
  buddy->policy = policy;
  notify_changed (ctx);
  return TRUE;
}
