/* purple-e2ee — the receiving half of the session: reassembly, offers,
 * envelopes (authentication, replay window, trust: shown, withheld or
 * dropped) and plaintext.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-session-private.h"
#include "e2ee-wipe.h"

/* Malformed-fragment reports (receive_full): one per conversation per
 * window, at most REPORTS_PER_WINDOW in all per window, and at most
 * REPORT_CONVS_MAX conversations remembered. */
#define REPORT_WINDOW_S 60
#define REPORTS_PER_WINDOW 10
#define REPORT_CONVS_MAX 256

typedef struct {
  gint64 last_report;
  guint suppressed;
} MalformedReport;

#define notify_changed e2ee_session_notify_changed
#define trust_is_usable e2ee_session_trust_usable
#define count_devices e2ee_session_count_devices

/* ---- receiving -------------------------------------------------------- */

void
e2ee_recv_result_clear (E2eeRecvResult *result)
{
  e2ee_string_free (result->plaintext);
  g_free (result->sender_kid);
  g_free (result->reply);
  g_clear_pointer (&result->new_devices, g_ptr_array_unref);
  g_clear_error (&result->error);
  memset (result, 0, sizeof *result);
}

static void
set_error (E2eeRecvResult *result, GError *error)
{
  result->kind = E2EE_RECV_ERROR;
  result->error = error;
}

static void
receive_offer (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
               const char *text, gboolean contact, E2eeRecvResult *result)
{
  E2eeOfferKind kind;
  GError *error = NULL;
  g_autoptr (GPtrArray) keys = e2ee_offer_inband_parse (text, &kind, &error);

  if (keys == NULL)
    {
      set_error (result, error);
      return;
    }
  result->learned = e2ee_context_learn_keys_full (ctx, account, buddy, keys, contact,
                                                  &result->new_devices, &error);
  if (result->learned == E2EE_LEARN_REFUSED || result->learned == E2EE_LEARN_INVALID)
    {
      /* Someone else's key offered under this name: not answered. */
      set_error (result, error);
      return;
    }
  result->kind = E2EE_RECV_OFFER;
  if (kind == E2EE_OFFER_KIND_OFFER && !account->identity_unsaved)
    {
      /* Answers are never answered, so two plugins cannot loop. */
      g_autoptr (GPtrArray) own = e2ee_context_own_keyset (ctx, account);
      result->reply = e2ee_offer_inband (E2EE_OFFER_KIND_ANSWER, own);
    }
}

static gboolean
plaintext_acceptable (const guint8 *text, gsize len)
{
  return memchr (text, '\0', len) == NULL && g_utf8_validate ((const char *) text, (gssize) len, NULL);
}

/* TRUE if the envelope names one of this account's other installations. */
static gboolean
addressed_to_own_device (E2eeAccountRecord *account, const E2eeEnvelopeV2 *env)
{
  E2eeBuddyRecord *self = e2ee_account_lookup_buddy (account, account->name);

  for (guint i = 0; self && i < self->devices->len; i++)
    {
      E2eeDeviceRecord *dev = self->devices->pdata[i];
      for (guint j = 0; j < env->n_slots; j++)
        if (env->slots[j].recipient_device == e2ee_v2_device_tag (dev->key))
          return TRUE;
    }
  return FALSE;
}

static gboolean
addressed_to_us (E2eeAccountRecord *account, const E2eeEnvelopeV2 *env)
{
  guint32 tag = e2ee_v2_device_tag (account->identity);

  for (guint j = 0; j < env->n_slots; j++)
    if (env->slots[j].recipient_device == tag)
      return TRUE;
  return FALSE;
}

/* The envelope, or NULL with *error (v1 envelopes are no longer read). */
static gboolean
parse_envelope (GBytes *raw, E2eeEnvelopeV2 *env, GError **error)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (raw, &len);

  if (len > 0 && (data[0] >> 4) == 1)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V1_RETIRED,
                           "an encrypted message in the retired version 1 format arrived "
                           "(no forward secrecy); it is not read: the sender must update "
                           "purple-e2ee");
      return FALSE;
    }
  return e2ee_envelope_v2_parse (data, len, env, error);
}

static void
receive_envelope (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                  const char *text, E2eeRecvResult *result)
{
  GError *error = NULL;
  g_autoptr (GBytes) raw = e2ee_armor_decode (text, &error);
  E2eeEnvelopeV2 env;
  E2eeBuddyRecord *buddy;
  E2eeDeviceRecord *dev = NULL;
  char *plaintext = NULL;
  gboolean weak = FALSE;

  memset (&env, 0, sizeof env);
  if (raw == NULL || !parse_envelope (raw, &env, &error))
    goto fail;
  if (!addressed_to_us (account, &env))
    {
      error = g_error_new_literal (E2EE_ERROR, E2EE_ERROR_NOT_FOR_US,
                                   addressed_to_own_device (account, &env)
                                   ? "an encrypted message arrived for another device of "
                                     "this account, not for this one"
                                   : "an encrypted message arrived that is not addressed "
                                     "to this device (the sender may not know its key yet)");
      goto fail;
    }
  buddy = e2ee_account_lookup_buddy (account, buddy_name);
  if (buddy == NULL || buddy->devices->len == 0)
    {
      g_autofree char *conv = e2ee_session_conv_key (account, buddy_name);

      if (e2ee_strangers_contains (ctx->strangers, conv))
        error = g_error_new (E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER,
                             "an encrypted message from %s arrived; %s is not among your "
                             "contacts, so their key is not used yet (add them, or write "
                             "to them, to accept it)", buddy_name, buddy_name);
      else
        error = g_error_new (E2EE_ERROR, E2EE_ERROR_UNKNOWN_SENDER,
                             "an encrypted message from %s arrived, but no key is known "
                             "for %s", buddy_name, buddy_name);
      goto fail;
    }
  if (!e2ee_session_v2_open (ctx, account, buddy, &env, &dev, &plaintext, &weak, &error))
    {
      if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_V2_DUPLICATE))
        {
          /* Duplicates (a transport repeating itself, a replay) are
           * dropped without a word. */
          g_error_free (error);
              result->kind = E2EE_RECV_PENDING;
          return;
        }
      /* A session that does not open is replaced by a new authenticated
       * start, sent back at once as an empty message (rate-limited per
       * device; the start itself proves who we are, and nothing the
       * failed message said is believed). */
      {
        g_autoptr (GBytes) heal = e2ee_session_v2_heal (ctx, account, buddy_name);

        if (heal != NULL && e2ee_session_commit (ctx, NULL))
          result->reply = e2ee_armor_encode (heal);
        else
          notify_changed (ctx);
      }
      goto fail;
    }
  result->weak = weak;
  if (dev->trust == E2EE_TRUST_REJECTED)
    {
      error = g_error_new (E2EE_ERROR, E2EE_ERROR_REJECTED,
                           "a message from device %.8s of %s, which you rejected, was "
                           "dropped (/e2ee trust %.8s would accept that device again)",
                           e2ee_key_get_kid (dev->key), buddy_name,
                           e2ee_key_get_kid (dev->key));
      result->sender_kid = g_strdup (e2ee_key_get_kid (dev->key));
      notify_changed (ctx);
      goto fail;
    }
  if (!plaintext_acceptable ((const guint8 *) plaintext, strlen (plaintext)))
    {
      error = g_error_new (E2EE_ERROR, E2EE_ERROR_ENVELOPE_TRAILING,
                           "an encrypted message from %s is not valid UTF-8 text", buddy_name);
      goto fail;
    }
  if (!trust_is_usable (dev->trust))
    {
      /* A device the user has not accepted (a new one, a changed key, or
       * one claiming to be our own account) does not speak for the buddy:
       * its words are held back until the user trusts it. */
      g_autofree char *conv = e2ee_session_conv_key (account, buddy_name);
      const char *kid = e2ee_key_get_kid (dev->key);
      gint64 when = (gint64) e2ee_session_now (ctx);

      dev->last_seen = when;
      if (!e2ee_session_commit (ctx, &error))
        goto fail;
      result->kind = E2EE_RECV_WITHHELD;
      result->sender_trust = dev->trust;
      result->sender_kid = g_strdup (kid);
      result->withheld_dropped = e2ee_withheld_add (ctx->withheld, conv, kid, plaintext, when);
      plaintext = NULL;
      if (e2ee_session_is_own (account, buddy_name))
        result->error = g_error_new (E2EE_ERROR, E2EE_ERROR_WITHHELD,
                                     "a message from a NEW DEVICE %.8s that claims to be "
                                     "YOUR OWN account is withheld and not shown; only if "
                                     "you added that device yourself, accept it with "
                                     "/e2ee own accept %.8s", kid, kid);
      else
        result->error = g_error_new (E2EE_ERROR, E2EE_ERROR_WITHHELD,
                                     "a message from device %.8s of %s, which you have "
                                     "not accepted, is withheld and not shown; compare "
                                     "its safety number (/e2ee verify), then /e2ee trust "
                                     "%.8s shows it", kid, buddy_name, kid);
      return;
    }
  dev->last_seen = (gint64) e2ee_session_now (ctx);
  buddy->had_encrypted = TRUE;
  /* The session state is on disk before the text is shown: a message
   * shown once is never shown again, even after a crash right now. */
  if (!e2ee_session_commit (ctx, &error))
    goto fail;
  if (*plaintext == '\0')
    {
      /* An empty message only turns the ratchet (a heartbeat). */
      e2ee_string_free (plaintext);
      result->kind = E2EE_RECV_PENDING;
      return;
    }
  result->kind = E2EE_RECV_MESSAGE;
  result->plaintext = plaintext;
  plaintext = NULL;
  result->sender_trust = dev->trust;
  result->sender_kid = g_strdup (e2ee_key_get_kid (dev->key));
  return;

fail:
  e2ee_string_free (plaintext);
  set_error (result, error);
}

/* TRUE if this malformed fragment of @conv is to be reported; otherwise
 * it is only counted.  *@suppressed: how many went unreported before. */
static gboolean
report_malformed (E2eeContext *ctx, const char *conv, gint64 now, guint *suppressed)
{
  MalformedReport *m = g_hash_table_lookup (ctx->malformed, conv);

  if (m != NULL && now >= m->last_report && now - m->last_report < REPORT_WINDOW_S)
    {
      m->suppressed++;
      return FALSE;
    }
  if (now < ctx->report_window_start || now - ctx->report_window_start >= REPORT_WINDOW_S)
    {
      ctx->report_window_start = now;
      ctx->reports_in_window = 0;
    }
  if (ctx->reports_in_window >= REPORTS_PER_WINDOW)
    {
      if (m != NULL)
        m->suppressed++;
      return FALSE;
    }
  if (m == NULL)
    {
      if (g_hash_table_size (ctx->malformed) >= REPORT_CONVS_MAX)
        g_hash_table_remove_all (ctx->malformed);
      m = g_new0 (MalformedReport, 1);
      g_hash_table_insert (ctx->malformed, g_strdup (conv), m);
    }
  *suppressed = m->suppressed;
  m->suppressed = 0;
  m->last_report = now;
  ctx->reports_in_window++;
  return TRUE;
}

guint64
e2ee_context_malformed_fragments (E2eeContext *ctx)
{
  return ctx->malformed_total;
}

static void
receive_text (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
              const char *text, gint64 now, gboolean contact, gboolean quiet,
              E2eeRecvResult *result)
{
  g_autofree char *complete = NULL;
  g_autofree char *trimmed = NULL;
  GError *error = NULL;
  E2eeBuddyRecord *buddy;

  memset (result, 0, sizeof *result);
  if (!e2ee_session_check_name (buddy_name, &error) || text == NULL)
    {
      if (error == NULL)
        error = g_error_new_literal (E2EE_ERROR, E2EE_ERROR_FAILED, "no message text");
      set_error (result, error);
      return;
    }
  e2ee_reassembler_expire (ctx->reassembler, now);
  /* Transports add or keep line breaks around a message; the wire forms
   * themselves never contain white space. */
  trimmed = g_strstrip (g_strdup (text));
  text = trimmed;
  buddy = e2ee_account_lookup_buddy (account, buddy_name);

  if (e2ee_fragment_detect (text))
    {
      g_autofree char *key = e2ee_session_conv_key (account, buddy_name);
      /* Senders with a pinned key outrank anyone else (fair reassembly). */
      guint rank = (e2ee_session_is_own (account, buddy_name)
                    || count_devices (buddy, TRUE) > 0) ? 1 : 0;

      if (!e2ee_reassembler_add_ranked (ctx->reassembler, key, rank, text, now, &complete,
                                        &error))
        {
          if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT))
            {
              ctx->malformed_total++;
              if (quiet && !report_malformed (ctx, key, now, &result->suppressed))
                {
                  g_error_free (error);
                  result->kind = E2EE_RECV_PENDING;
                  return;
                }
            }
          set_error (result, error);
          return;
        }
      if (complete == NULL)
        {
          result->kind = E2EE_RECV_PENDING;
          return;
        }
      text = complete;
    }

  if (complete == NULL && e2ee_offer_note_detect (text))
    result->kind = E2EE_RECV_PENDING;   /* the sentence of a split offer: for people */
  else if (e2ee_offer_inband_detect (text))
    receive_offer (ctx, account, buddy_name, text, contact, result);
  else if (e2ee_armor_detect (text))
    receive_envelope (ctx, account, buddy_name, text, result);
  else if (complete != NULL)
    set_error (result, g_error_new_literal (E2EE_ERROR, E2EE_ERROR_FRAGMENT,
                                            "reassembled fragments hold no envelope"));
  else
    {
      /* Plaintext from someone who has had a key is suspicious whatever
       * state their keys are in (rejected, undecided, changed). */
      result->kind = E2EE_RECV_PLAINTEXT;
      result->downgrade = buddy != NULL && (buddy->had_encrypted || buddy->key_changed
                                            || buddy->devices->len > 0);
    }
}

void
e2ee_context_receive (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy_name,
                      const char *text, gint64 now, E2eeRecvResult *result)
{
  receive_text (ctx, account, buddy_name, text, now, TRUE, FALSE, result);
}

void
e2ee_context_receive_full (E2eeContext *ctx, E2eeAccountRecord *account,
                           const char *buddy_name, const char *text, gint64 now,
                           gboolean contact, E2eeRecvResult *result)
{
  receive_text (ctx, account, buddy_name, text, now, contact, TRUE, result);
}

