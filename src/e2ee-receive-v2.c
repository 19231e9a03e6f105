/* purple-e2ee — opening protocol v2 envelopes: finding the slot for this
 * device, the sending device among the buddy's (device tags may collide:
 * every candidate is tried, authentication decides), the session (an
 * existing one, or a new one from an authenticated start), all on copies
 * until a message opens.  PROTOCOL.md §4–8.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-kdf.h"
#include "e2ee-session-private.h"
#include "e2ee-wipe.h"

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
  const char *buddy;
  const E2eeEnvelopeV2 *env;
  guint slot;
  guint64 now;
  /* results */
  E2eeDeviceRecord *dev;
  char *text;
  E2eeRatchetOpened info;
  gboolean duplicate;
  gboolean tried_session;
  GError *error;        /* the most telling failure */
} Attempt;

/* How much a failure says, for the one report: a prekey that is gone or
 * a skip beyond the bound names the problem; a body that does not match
 * its slot, or bad padding, means the message was altered after a slot
 * authenticated; a plain tag failure says only "not this session". */
static int
error_rank (const GError *error)
{
  static const int order[] = {
    E2EE_ERROR_V2_START, E2EE_ERROR_V2_SKIP_LIMIT, E2EE_ERROR_V2_ENVELOPE,
    E2EE_ERROR_ENVELOPE_TRAILING, E2EE_ERROR_V2_NO_SESSION, E2EE_ERROR_AEAD_TAG,
  };

  if (error == NULL)
    return -1;
  for (guint i = 0; error->domain == E2EE_ERROR && i < G_N_ELEMENTS (order); i++)
    if (error->code == order[i])
      return (int) (G_N_ELEMENTS (order) - i);
  return 0;
}

static int
error_rank_of (int code)
{
  GError e = { E2EE_ERROR, code, NULL };

  return error_rank (&e);
}

static void
keep_error (Attempt *a, GError *error)
{
  if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_V2_DUPLICATE))
    {
      /* A session that already consumed this (chain, number) decides:
       * the message was received before, whatever the other sessions say. */
      a->duplicate = TRUE;
      g_error_free (error);
      return;
    }
  if (error_rank (error) > error_rank (a->error))
    {
      g_clear_error (&a->error);
      a->error = error;
    }
  else
    g_error_free (error);
}

/* Tries every session of @peer. */
static gboolean
open_existing (Attempt *a, E2eeV2Peer *peer)
{
  for (guint j = 0; j < peer->sessions->len; j++)
    {
      GError *error = NULL;
      E2eeRatchet **session = (E2eeRatchet **) &peer->sessions->pdata[j];

      a->tried_session = TRUE;
      a->text = e2ee_envelope_v2_open (a->env, a->slot, session, a->now, &a->info, &error);
      if (a->text != NULL)
        {
          e2ee_ratchet_expire (*session, a->now);
          return TRUE;
        }
      /* V2_START here only says "a start for another session". */
      if (g_error_matches (error, E2EE_ERROR, E2EE_ERROR_V2_START))
        g_error_free (error);
      else
        keep_error (a, error);
    }
  return FALSE;
}

/* A start (type 2) that opens in no existing session: a new session as
 * responder, if its prekey is still here and the start was not accepted
 * before. */
static gboolean
open_start (Attempt *a, E2eeDeviceRecord *dev, E2eeV2Peer *peer, const E2eeV2Message *msg)
{
  E2eeV2Own *own = e2ee_session_v2_own (a->ctx, a->account, NULL);
  E2eeOwnPrekey *pk = NULL;
  g_autofree char *self_id = e2ee_kdf_account_id (a->account->protocol, a->account->name);
  g_autofree char *peer_id = e2ee_kdf_account_id (a->account->protocol, a->buddy);
  E2eeX3dhParty self = { a->account->identity, self_id,
                         e2ee_v2_device_tag (a->account->identity), E2EE_V2_VERSIONS };
  E2eeX3dhParty other = { dev->key, peer_id, msg->sender_device, msg->versions };
  E2eeX3dhResult x3dh;
  E2eeRatchet *session;
  guint8 tag[32];
  GError *error = NULL;

  if (own == NULL)
    return FALSE;
  if (msg->mode == E2EE_X3DH_MODE_PREKEY && (pk = e2ee_v2own_find (own, msg->spk_id)) == NULL)
    {
      keep_error (a, g_error_new (E2EE_ERROR, E2EE_ERROR_V2_START,
                                  "a first message from %s names a prekey this device no "
                                  "longer has (deleted after three weeks, or never made): "
                                  "it cannot be read", a->buddy));
      return FALSE;
    }
  e2ee_x3dh_replay_tag ((E2eeX3dhMode) msg->mode, msg->spk_id, msg->dh_key, tag);
  if (pk != NULL ? e2ee_v2own_tag_seen (pk, tag) : e2ee_v2own_weak_tag_seen (own, tag))
    {
      if (msg->n == 0 && msg->pn == 0)
        a->duplicate = TRUE;   /* a replayed first message: dropped silently */
      else
        keep_error (a, g_error_new (E2EE_ERROR, E2EE_ERROR_V2_NO_SESSION,
                                    "a message from %s belongs to a session this device "
                                    "no longer keeps", a->buddy));
      return FALSE;
    }
  if (!e2ee_x3dh_respond (&self, &other, (E2eeX3dhMode) msg->mode, pk ? pk->secret : NULL,
                          pk ? pk->id : 0, msg->dh_key, &x3dh, &error))
    {
      keep_error (a, error);
      return FALSE;
    }
  session = e2ee_ratchet_new_responder (&x3dh, msg->dh_key, self.device, other.device);
  e2ee_x3dh_result_clear (&x3dh);
  a->text = e2ee_envelope_v2_open (a->env, a->slot, &session, a->now, &a->info, &error);
  if (a->text == NULL)
    {
      e2ee_ratchet_free (session);
      keep_error (a, error);
      return FALSE;
    }
  if (pk != NULL && !e2ee_v2own_tag_add (pk, tag, e2ee_session_trust_usable (dev->trust), &error))
    {
      e2ee_string_free (g_steal_pointer (&a->text));
      e2ee_ratchet_free (session);
      keep_error (a, error);
      return FALSE;
    }
  /* A start without a prekey can be replayed for as long as our identity
   * key lives: its tag is kept too (the last 4096). */
  if (pk == NULL)
    e2ee_v2own_weak_tag_add (own, tag, e2ee_session_trust_usable (dev->trust));
  e2ee_session_v2_own_changed (a->ctx, a->account, own);
  /* The peer started a session of its own: it could not read ours (it
   * lost its state, or both started before either heard from the other).
   * We answer on the one it started, and keep ours for receiving: each
   * side then sends on the session the other started, so a crossed start
   * costs no message and a peer that lost its state is answered at once.
   * (Keeping the session with the smaller sid, as e2ee_x3dh_crossed_keep_ours
   * would, leaves a peer that lost its state unable to read us.) */
  e2ee_v2peer_add_session (peer, session, TRUE);
  return TRUE;
}

static gboolean
try_device (Attempt *a, E2eeDeviceRecord *dev, const E2eeV2Message *msg)
{
  E2eeV2Peer *peer;
  GError *error = NULL;

  if (msg->type == E2EE_V2_TYPE_START && !e2ee_key_equal (msg->initiator, dev->key))
    return FALSE;
  peer = e2ee_session_v2_peer (a->ctx, a->account, a->buddy, dev->key, &error);
  if (peer == NULL)
    {
      keep_error (a, error);
      return FALSE;
    }
  if (!open_existing (a, peer)
      && !(msg->type == E2EE_V2_TYPE_START && open_start (a, dev, peer, msg)))
    {
      if (a->tried_session && !a->duplicate)
        peer->failures++;
      return FALSE;
    }
  peer->failures = 0;
  a->dev = dev;
  e2ee_session_v2_peer_changed (a->ctx, a->account, a->buddy, dev->key, peer);
  return TRUE;
}

static gboolean
try_slot (Attempt *a, E2eeBuddyRecord *buddy)
{
  const E2eeEnvelopeV2Slot *slot = &a->env->slots[a->slot];
  E2eeV2Message msg;
  GError *error = NULL;
  gboolean found = FALSE;

  if (!e2ee_v2_message_parse (slot->message, slot->message_len, &msg, &error))
    {
      keep_error (a, error);
      return FALSE;
    }
  for (guint i = 0; !found && i < buddy->devices->len; i++)
    {
      E2eeDeviceRecord *dev = buddy->devices->pdata[i];

      if (e2ee_v2_device_tag (dev->key) == msg.sender_device)
        found = try_device (a, dev, &msg);
    }
  e2ee_v2_message_clear (&msg);
  return found;
}

gboolean
e2ee_session_v2_open (E2eeContext *ctx, E2eeAccountRecord *account, E2eeBuddyRecord *buddy,
                      const E2eeEnvelopeV2 *env, E2eeDeviceRecord **dev_out, char **text_out,
                      gboolean *weak_out, GError **error)
{
  Attempt a = { ctx, account, buddy->name, env, 0, e2ee_session_now (ctx), NULL, NULL,
                { 0 }, FALSE, FALSE, NULL };
  guint32 our_tag = e2ee_v2_device_tag (account->identity);

  for (guint i = 0; i < env->n_slots && a.dev == NULL; i++)
    {
      if (env->slots[i].recipient_device != our_tag)
        continue;
      a.slot = i;
      try_slot (&a, buddy);
    }
  if (a.dev != NULL)
    {
      g_clear_error (&a.error);
      *dev_out = a.dev;
      *text_out = a.text;
      *weak_out = a.info.weak;
      return TRUE;
    }
  if (a.duplicate)
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_DUPLICATE,
                 "a message from %s was received before and was dropped", buddy->name);
  else if (error_rank (a.error) > error_rank_of (E2EE_ERROR_V2_NO_SESSION))
    g_propagate_error (error, g_steal_pointer (&a.error));
  else if (a.tried_session || g_error_matches (a.error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG))
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG,
                 "an encrypted message from %s could not be opened (altered in transit, "
                 "or its session is lost); the next message to %s starts a new session",
                 buddy->name, buddy->name);
  else
    g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_NO_SESSION,
                 "an encrypted message from %s belongs to a session this device does not "
                 "have (restored from a backup?); the next message to %s starts a new one",
                 buddy->name, buddy->name);
  g_clear_error (&a.error);
  return FALSE;
}
