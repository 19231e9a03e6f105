/* purple-e2ee — what this device keeps about one device of a buddy (or of
 * its own account) for protocol v2: the signing key pinned when the device
 * was first seen with one, the newest prekey record that verified under
 * it, whether the device has ever shown a valid prekey (from then on no
 * session is started with it without one: a server stripping prekeys
 * cannot force the weaker start), and its ratchet sessions, the one we
 * send on first.  Stored as one sealed PEER row (e2ee-store-v2.h).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-prekey.h"
#include "e2ee-ratchet.h"

G_BEGIN_DECLS

/* Sessions kept per device: the one we send on and older ones still
 * receiving (crossed starts, a peer that started again). */
#define E2EE_V2PEER_MAX_SESSIONS 3

typedef struct {
  E2eeKey *sign_pub;       /* pinned, or NULL */
  GBytes *prekey;          /* newest verified record, or NULL */
  guint64 prekey_expires;
  gboolean prekey_seen;
  GPtrArray *sessions;     /* E2eeRatchet*, [0] = the one we send on */
  /* In memory only: undecryptable messages since the last successful
   * one, and when a new start may be made next (rate limit). */
  guint failures;
  gint64 next_restart;
} E2eeV2Peer;

E2eeV2Peer *e2ee_v2peer_new (void);
void e2ee_v2peer_free (E2eeV2Peer *peer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeV2Peer, e2ee_v2peer_free)

/* Stored form (secret: e2ee_bytes_free) and its strict parser
 * (E2EE_ERROR_KEYRING_CORRUPT). */
GBytes *e2ee_v2peer_serialize (const E2eeV2Peer *peer);
E2eeV2Peer *e2ee_v2peer_parse (const guint8 *data, gsize len, GError **error);

/* Takes in the v2 data published with @device_key (e2ee_key_get_sign_pub,
 * e2ee_key_get_prekey_record) at @now: the signing key is pinned at first
 * sight and a later different one ignored; a record replaces the kept one
 * if it verifies under the pinned key for this identity and device and is
 * newer (a later expiry).  TRUE if anything changed. */
gboolean e2ee_v2peer_learn (E2eeV2Peer *peer, const E2eeKey *device_key, guint64 now);

/* The kept prekey, verified again at @now, or NULL (expired, none). */
E2eePrekey *e2ee_v2peer_prekey (const E2eeV2Peer *peer, const E2eeKey *device_key,
                                guint64 now);

/* Puts @session first (the one we send on), keeping at most
 * E2EE_V2PEER_MAX_SESSIONS (the oldest dropped).  Takes ownership. */
void e2ee_v2peer_add_session (E2eeV2Peer *peer, E2eeRatchet *session, gboolean send_on_it);

G_END_DECLS
