/* purple-e2ee — the Double Ratchet of protocol v2 (PROTOCOL.md §7, §8.7):
 * P-256 ECDH, KDF_RK = HKDF-SHA256, KDF_CK = HMAC-SHA256, AES-256-GCM
 * with a random 96-bit IV; the whole header and the session binding (sid)
 * authenticated.
 *
 * Ownership: an E2eeRatchet is owned by its creator and freed (wiped) with
 * e2ee_ratchet_free.  The initiator's constructor takes ownership of the
 * ephemeral key.  Sealed messages are new GBytes (public: g_bytes_unref);
 * opened plaintexts are new GBytes holding a secret: free them with
 * e2ee_bytes_free.  State blobs hold every secret of the session: free
 * them with e2ee_bytes_free, store them only encrypted at rest.
 *
 * State rules the caller must follow:
 *  - Save before send: after e2ee_ratchet_seal returns, persist
 *    e2ee_ratchet_serialize() durably, and only then transmit.  The state
 *    has already advanced (also when sealing failed), so a crash can lose
 *    a message but never reuse a message key.
 *  - Receive: e2ee_ratchet_open works on a copy and changes the state only
 *    when the message authenticates; persist, then display.
 *  - E2EE_ERROR_V2_DUPLICATE: drop silently.  E2EE_ERROR_V2_SKIP_LIMIT,
 *    E2EE_ERROR_AEAD_TAG, E2EE_ERROR_V2_FORMAT, E2EE_ERROR_V2_DEVICE,
 *    E2EE_ERROR_V2_START: the state is byte-for-byte unchanged.
 *  - Times are Unix seconds from the caller; they only expire skipped keys.
 * Not thread-safe: one thread per state at a time.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-ratchet-wire.h"
#include "e2ee-x3dh.h"

G_BEGIN_DECLS

#define E2EE_RATCHET_MAX_SKIP 1000          /* per chain, per message */
#define E2EE_RATCHET_MAX_SKIPPED 2000       /* stored skipped keys per session */
#define E2EE_RATCHET_MAX_CHAINS 5           /* receiving chains remembered */
#define E2EE_RATCHET_MAX_AGE (7 * 86400)    /* seconds a skipped key is kept */
#define E2EE_RATCHET_HEARTBEAT 50           /* receipts without sending */

typedef struct _E2eeRatchet E2eeRatchet;

/* Session from the initiator's side, after e2ee_x3dh_initiate.  @initiator
 * is our public identity and @versions ours: both go in the start prefix
 * repeated on every message until the peer's first message opens. */
E2eeRatchet *e2ee_ratchet_new_initiator (const E2eeX3dhResult *x3dh, E2eeEcSecret *ephemeral,
                                         const E2eeKey *initiator, guint8 versions,
                                         guint32 local_device, guint32 remote_device);
/* Session from the responder's side, after e2ee_x3dh_respond on a start
 * message whose DHs is @ephemeral; then open that message with it. */
E2eeRatchet *e2ee_ratchet_new_responder (const E2eeX3dhResult *x3dh, const E2eeKey *ephemeral,
                                         guint32 local_device, guint32 remote_device);
void e2ee_ratchet_free (E2eeRatchet *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeRatchet, e2ee_ratchet_free)

/* Seals @len bytes (at most E2EE_V2_MAX_PLAINTEXT). */
GBytes *e2ee_ratchet_seal (E2eeRatchet *state, const guint8 *plaintext, gsize len,
                           GError **error);

/* Does now what the next seal would otherwise do first after a new
 * receiving chain: draw our next ratchet key and derive the sending chain
 * (a key generation and one ECDH, the bulk of a turn).  Call it off the
 * critical path after a receipt (an idle callback), then save the state;
 * the next seal then costs microseconds.  A no-op (TRUE) when nothing is
 * due.  On failure the state is unchanged. */
gboolean e2ee_ratchet_prepare (E2eeRatchet *state, GError **error);
/* TRUE while a new ratchet key is due (e2ee_ratchet_prepare has work). */
gboolean e2ee_ratchet_key_due (const E2eeRatchet *state);

typedef struct {
  guint32 n;            /* the message's number in its chain */
  gboolean new_chain;   /* it started a new receiving chain (a DH step) */
  gboolean skipped;     /* it used a stored skipped key */
  gboolean weak;        /* sealed under a start without prekey, before any reply */
} E2eeRatchetOpened;

GBytes *e2ee_ratchet_open (E2eeRatchet *state, const guint8 *data, gsize len,
                           guint64 now, E2eeRatchetOpened *info, GError **error);

/* Deletes skipped keys older than E2EE_RATCHET_MAX_AGE at @now. */
void e2ee_ratchet_expire (E2eeRatchet *state, guint64 now);

/* TRUE while messages we seal still carry the start prefix (no reply yet). */
gboolean e2ee_ratchet_awaiting_reply (const E2eeRatchet *state);
/* TRUE while the session rests on a start without prekey and the
 * initiator has had no reply: show "not forward-secret until reply". */
gboolean e2ee_ratchet_is_weak (const E2eeRatchet *state);
/* TRUE after E2EE_RATCHET_HEARTBEAT receipts without a send: send an
 * empty message so the ratchet turns. */
gboolean e2ee_ratchet_needs_heartbeat (const E2eeRatchet *state);
guint e2ee_ratchet_skipped_count (const E2eeRatchet *state);
const guint8 *e2ee_ratchet_get_sid (const E2eeRatchet *state);

/* Versioned state blob (PROTOCOL.md §8.7) and its strict parser
 * (E2EE_ERROR_V2_STATE for every fault). */
GBytes *e2ee_ratchet_serialize (const E2eeRatchet *state);
E2eeRatchet *e2ee_ratchet_deserialize (const guint8 *blob, gsize len, GError **error);

G_END_DECLS
