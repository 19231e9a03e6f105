/* purple-e2ee — what the session modules (e2ee-session.c, e2ee-trust.c)
 * share; not part of the public API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-aead.h"
#include "e2ee-session.h"
#include "e2ee-strangers.h"
#include "e2ee-v2own.h"
#include "e2ee-v2peer.h"
#include "e2ee-v2store.h"
#include "e2ee-withheld.h"

G_BEGIN_DECLS

struct _E2eeContext {
  E2eeKeyring *keyring;
  E2eePolicy default_policy;
  gsize pad_block;
  E2eeChangedFunc changed;
  gpointer changed_data;
  E2eeCommitFunc commit;
  gpointer commit_data;
  E2eeReassembler *reassembler;
  /* Plaintexts from devices not accepted yet (bounded, wiped). */
  E2eeWithheld *withheld;
  /* Key sets of non-contacts (bounded LRU, in memory only). */
  E2eeStrangers *strangers;
  /* Malformed-fragment reports: conv -> MalformedReport (bounded). */
  GHashTable *malformed;
  guint64 malformed_total;
  gint64 report_window_start;
  guint reports_in_window;
  /* Protocol v2 (e2ee-session-v2.c): pending rows for the keyring's
   * saves, this device's material per account (E2eeAccountRecord* ->
   * E2eeV2Own*) and buddies' devices ("conv\nkid" -> E2eeV2Peer*). */
  E2eeV2Store *v2;
  GHashTable *v2_own;
  GHashTable *v2_peers;
  E2eeClockFunc clock;
  gpointer clock_data;
};

/* The context's withheld messages and strangers' cache. */
E2eeWithheld *e2ee_session_withheld (E2eeContext *ctx);
E2eeStrangers *e2ee_session_strangers (E2eeContext *ctx);

/* Devices of @buddy (nullable) that are usable (TOFU/VERIFIED), or with
 * @usable FALSE those not rejected. */
guint e2ee_session_count_devices (E2eeBuddyRecord *buddy, gboolean usable);

static inline gboolean
e2ee_session_trust_usable (E2eeTrust trust)
{
  return trust == E2EE_TRUST_TOFU || trust == E2EE_TRUST_VERIFIED;
}

/* "protocol\naccount\nbuddy": the key of one conversation (names hold no
 * control characters, so it is unambiguous). */
char *e2ee_session_conv_key (const E2eeAccountRecord *account, const char *buddy);
/* TRUE if @buddy is the account's own name (its other devices). */
gboolean e2ee_session_is_own (const E2eeAccountRecord *account, const char *buddy);
gboolean e2ee_session_check_name (const char *name, GError **error);
void e2ee_session_notify_changed (E2eeContext *ctx);
/* Makes the last change durable through the host's commit func (or just
 * notifies the changed func); FALSE with *error when the host could not. */
gboolean e2ee_session_commit (E2eeContext *ctx, GError **error);

/* ---- protocol v2 (e2ee-session-v2.c, e2ee-receive-v2.c) ---- */
struct _E2eeEnvelopeV2;
/* Sets up the context's v2 state handling (after ctx->v2 is made). */
void e2ee_session_v2_init (E2eeContext *ctx);
/* Unix seconds from the context's clock. */
guint64 e2ee_session_now (E2eeContext *ctx);
/* This device's v2 material for @account, made or rotated as due. */
E2eeV2Own *e2ee_session_v2_own (E2eeContext *ctx, E2eeAccountRecord *account, GError **error);
void e2ee_session_v2_own_changed (E2eeContext *ctx, E2eeAccountRecord *account, E2eeV2Own *own);
/* Our identity as published: public, caps v1|v2, signing key and prekey. */
E2eeKey *e2ee_session_v2_publish_key (E2eeContext *ctx, E2eeAccountRecord *account);
/* A device's state (cached; NULL only if its row is unreadable). */
E2eeV2Peer *e2ee_session_v2_peer (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                                  const E2eeKey *device, GError **error);
void e2ee_session_v2_peer_changed (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                                   const E2eeKey *device, E2eeV2Peer *peer);
/* After a key set of @buddy was learned: takes in the v2 data of its
 * pinned devices. */
void e2ee_session_v2_learn_set (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                                GPtrArray *keys);
/* A device key with the v2 data it last showed (new ref). */
E2eeKey *e2ee_session_v2_device_key (E2eeContext *ctx, E2eeAccountRecord *account,
                                     const char *buddy, const E2eeKey *device);
/* Seals @text to the usable devices of @buddy and our own: the sessions'
 * states are pending for the next save (the caller commits before sending). */
GBytes *e2ee_session_v2_seal (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy,
                              const char *text, GError **error);
/* After a message from @buddy did not open: an envelope (an empty
 * message) that starts new sessions with the buddy's devices whose session
 * looks broken, at most once per device every 10 minutes; NULL if none is
 * due.  Pending for the save like any seal. */
GBytes *e2ee_session_v2_heal (E2eeContext *ctx, E2eeAccountRecord *account, const char *buddy);
/* Opens a parsed envelope from @buddy. */
gboolean e2ee_session_v2_open (E2eeContext *ctx, E2eeAccountRecord *account, E2eeBuddyRecord *buddy,
                               const struct _E2eeEnvelopeV2 *env, E2eeDeviceRecord **dev,
                               char **text, gboolean *weak, GError **error);

G_END_DECLS
