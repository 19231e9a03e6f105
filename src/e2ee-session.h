/* purple-e2ee — the one entry point a messaging client calls: turning
 * outgoing text into pieces to send and incoming pieces into text, learning
 * and trusting keys.  Knows nothing of libpurple; the host passes names.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-fragment.h"
#include "e2ee-keyring.h"
#include "e2ee-offer.h"
#include "e2ee-strangers.h"
#include "e2ee-withheld.h"

G_BEGIN_DECLS

typedef struct _E2eeContext E2eeContext;

/* Takes ownership of @keyring. */
E2eeContext *e2ee_context_new (E2eeKeyring *keyring);
void e2ee_context_free (E2eeContext *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeContext, e2ee_context_free)

E2eeKeyring *e2ee_context_get_keyring (E2eeContext *ctx);

/* The policy used for buddies whose own policy is E2EE_POLICY_DEFAULT
 * (initially OPPORTUNISTIC: encrypt when a key is known; once a buddy has
 * a key, a failure to encrypt never falls back to plaintext). */
void e2ee_context_set_default_policy (E2eeContext *ctx, E2eePolicy policy);
E2eePolicy e2ee_context_get_default_policy (E2eeContext *ctx);

/* Pads every message to a multiple of @block bytes plus 0..3 random extra
 * blocks (0: no padding, the default; at most 1024). */
void e2ee_context_set_padding (E2eeContext *ctx, gsize block);

/* Called after every change that must reach the disk (new keys, trust,
 * replay state).  The host saves (at once or shortly after). */
typedef void (*E2eeChangedFunc) (E2eeContext *ctx, gpointer user_data);
void e2ee_context_set_changed_func (E2eeContext *ctx, E2eeChangedFunc func,
                                    gpointer user_data);

/* The durable form of the above: called (instead of the changed func) after
 * every state change, and it must have made the change durable when it
 * returns TRUE.  When it returns FALSE (with *error set), the operation
 * that made the change fails closed: e2ee_context_encrypt() returns NULL
 * (nothing may leave whose counter is not on disk) and
 * e2ee_context_receive() reports E2EE_RECV_ERROR with that error instead of
 * the plaintext (a message whose replay state is not on disk is not shown,
 * so it can never be shown twice). */
typedef gboolean (*E2eeCommitFunc) (E2eeContext *ctx, gpointer user_data, GError **error);
void e2ee_context_set_commit_func (E2eeContext *ctx, E2eeCommitFunc func,
                                   gpointer user_data);

/* The clock used for prekey rotation and deletion and the age of skipped
 * message keys: Unix seconds (NULL: the system's real time).  For tests. */
typedef gint64 (*E2eeClockFunc) (gpointer data);
void e2ee_context_set_clock (E2eeContext *ctx, E2eeClockFunc func, gpointer data);

/* TRUE while the session we send to @buddy on was started without a
 * prekey and has had no reply: what we send is not forward-secret until
 * then (tell the user). */
gboolean e2ee_context_session_weak (E2eeContext *ctx, E2eeAccountRecord *account,
                                    const char *buddy);

/* Draws the next ratchet key for the sessions with @buddy whose turn it
 * is (after a message from them), and saves: the next message to them then
 * costs microseconds instead of a key generation and an ECDH.  For an idle
 * callback after a receipt; a no-op when nothing is due. */
gboolean e2ee_context_prepare_sessions (E2eeContext *ctx, E2eeAccountRecord *account,
                                        const char *buddy, GError **error);

/* Names: buddy and account names must be non-empty UTF-8 of at most
 * E2EE_NAME_MAX bytes without control characters; every function below
 * refuses others (E2EE_ERROR_NAME, or the failing result value) and never
 * records them. */
#define E2EE_NAME_MAX 512
gboolean e2ee_name_is_valid (const char *name);

/* The account record, with a new identity key generated if it has none.
 * *@created tells whether one was made (the host then saves).  A record
 * whose identity could not be saved yet (see _saved below) gives NULL
 * with E2EE_ERROR_IDENTITY_UNSAVED. */
E2eeAccountRecord *e2ee_context_ensure_account (E2eeContext *ctx,
                                                const char *protocol,
                                                const char *name,
                                                gboolean *created,
                                                GError **error);
/* As ensure_account, but a newly generated identity is saved at once
 * (e2ee_keyring_save) and only returned if that worked.  If the save
 * fails, NULL with the save's error: the identity is kept in memory,
 * marked identity_unsaved, never published (own_keyset is empty) nor used
 * to encrypt, and every later ensure_account(_saved) retries the save. */
E2eeAccountRecord *e2ee_context_ensure_account_saved (E2eeContext *ctx,
                                                      const char *protocol,
                                                      const char *name,
                                                      gboolean *created,
                                                      GError **error);

/* What this installation publishes for @account: its own public key first,
 * then the account's other devices the user CONFIRMED (own devices that
 * are pending are never listed).  Empty if the identity is unsaved.
 * (new array of E2eeKey) */
GPtrArray *e2ee_context_own_keyset (E2eeContext *ctx, E2eeAccountRecord *account);

typedef enum {
  E2EE_LEARN_NOTHING_NEW = 0,
  E2EE_LEARN_FIRST_CONTACT,   /* pinned (TOFU) */
  E2EE_LEARN_NEW_DEVICE,      /* a further device: UNDECIDED, its messages withheld */
  E2EE_LEARN_KEY_CHANGED,     /* every pinned key replaced (or all were rejected):
                                 new keys UNDECIDED, key_changed set, sending blocked */
  E2EE_LEARN_OWN_DEVICE,      /* a NEW device claims to be OUR account: pending
                                 (UNDECIDED), gets nothing, never republished, its
                                 messages withheld, until e2ee_context_set_own_trust.
                                 Warn loudly. */
  E2EE_LEARN_REFUSED,         /* a key of the set is already pinned under another
                                 buddy of this account, or is our own: nothing of the
                                 set was pinned (E2EE_ERROR_KEY_ELSEWHERE); or the
                                 buddy is at its device cap (64) with no undecided
                                 device that never sent a message to make room: no
                                 new key was recorded (E2EE_ERROR_DEVICE_LIMIT).
                                 Below the cap such devices are dropped, oldest
                                 first, to make room for new ones. */
  E2EE_LEARN_STRANGER,        /* not a contact: kept in the bounded in-memory
                                 strangers cache, nothing pinned; see
                                 e2ee_context_promote_stranger */
  E2EE_LEARN_INVALID,         /* the buddy name is invalid (E2EE_ERROR_NAME) */
} E2eeLearnResult;

/* Records a key set published by @buddy (from a profile, status or offer),
 * treating @buddy as a contact.  Same as _full with contact TRUE and no
 * error. */
E2eeLearnResult e2ee_context_learn_keys (E2eeContext *ctx,
                                         E2eeAccountRecord *account,
                                         const char *buddy, GPtrArray *keys,
                                         GPtrArray **new_devices);

/* Records a key set published by @buddy.  @contact: the host knows @buddy
 * (on the buddy list, or the user wrote to them).  If not, and nothing is
 * pinned for @buddy yet, the set goes into the strangers cache
 * (E2EE_STRANGERS_MAX entries, least recently used dropped) and the
 * result is E2EE_LEARN_STRANGER.
 * Our own key is ignored in our own account's set; every other key of our
 * own account's set is an own device: never trusted on first use.
 * @new_devices (nullable) receives the E2eeKey of each device not seen
 * before (also for OWN_DEVICE); @error (nullable) is set for REFUSED
 * (E2EE_ERROR_KEY_ELSEWHERE, naming where the key is pinned) and INVALID. */
E2eeLearnResult e2ee_context_learn_keys_full (E2eeContext *ctx,
                                              E2eeAccountRecord *account,
                                              const char *buddy, GPtrArray *keys,
                                              gboolean contact,
                                              GPtrArray **new_devices,
                                              GError **error);

/* The host learned that @buddy is a contact (added to the buddy list, or
 * the user writes to them): pins the key set cached for them, if any, as
 * learn_keys would (E2EE_LEARN_NOTHING_NEW if none was cached). */
E2eeLearnResult e2ee_context_promote_stranger (E2eeContext *ctx,
                                               E2eeAccountRecord *account,
                                               const char *buddy,
                                               GPtrArray **new_devices,
                                               GError **error);
/* Number of key sets in the strangers cache (all accounts). */
guint e2ee_context_strangers_count (E2eeContext *ctx);

typedef enum {
  E2EE_SEND_ENCRYPT,     /* e2ee_context_encrypt() will work */
  E2EE_SEND_PLAINTEXT,   /* policy allows plaintext (off, or opportunistic and no key) */
  E2EE_SEND_BLOCK,       /* must not send: *error says why (NO_KEY, UNTRUSTED, ...) */
} E2eeSendDecision;

/* Once a buddy has had any key (a device record, whatever its trust),
 * nothing goes to them in plaintext unless their policy (or the default)
 * is OFF: with no usable device the decision is BLOCK with
 * E2EE_ERROR_UNTRUSTED, whose message names the way out (/e2ee trust
 * DEVICE, /e2ee off). */
E2eeSendDecision e2ee_context_send_decision (E2eeContext *ctx,
                                             E2eeAccountRecord *account,
                                             const char *buddy, GError **error);

/* Encrypts @plaintext to every trusted device of @buddy and the account's
 * other trusted devices, armors it and splits it into pieces of at most
 * @budget bytes (0: one piece).  Returns a NULL-terminated strv. */
char **e2ee_context_encrypt (E2eeContext *ctx, E2eeAccountRecord *account,
                             const char *buddy, const char *plaintext,
                             gsize budget, GError **error);

/* Splits a text made for the wire (an armored envelope, a key offer or an
 * answer) into pieces of at most @budget bytes (0: one piece).  An offer
 * that does not fit travels without its human-readable sentence, in
 * fragments (which the receiving side reassembles like an envelope's).
 * NULL-terminated strv. */
char **e2ee_wire_pieces (const char *text, gsize budget, GError **error);

typedef enum {
  E2EE_RECV_PLAINTEXT = 0,   /* not ours: show as is (downgrade flag may be set) */
  E2EE_RECV_PENDING,         /* show nothing: a fragment was kept, or a malformed
                                fragment was counted without a report (see
                                e2ee_context_malformed_fragments) */
  E2EE_RECV_MESSAGE,         /* decrypted: show plaintext */
  E2EE_RECV_OFFER,           /* a key offer/answer was handled; show nothing */
  E2EE_RECV_ERROR,           /* show a system line from error; never the text.
                                Code E2EE_ERROR_REJECTED: from a rejected device,
                                dropped */
  E2EE_RECV_WITHHELD,        /* decrypted but NOT to be shown: the sending device
                                (sender_kid, sender_trust) is UNDECIDED (new device,
                                changed key, or own device pending).  Kept in memory
                                (E2EE_WITHHELD_PER_BUDDY per buddy,
                                E2EE_WITHHELD_TOTAL in all, oldest dropped); after
                                the user trusts the device, e2ee_context_take_withheld
                                hands it out.  error (E2EE_ERROR_WITHHELD) holds a
                                line saying so. */
} E2eeRecvKind;

typedef struct {
  E2eeRecvKind kind;
  char *plaintext;           /* MESSAGE: secret, freed with the result */
  E2eeTrust sender_trust;    /* MESSAGE, WITHHELD: trust of the sending device */
  char *sender_kid;          /* MESSAGE, WITHHELD, ERROR REJECTED: kid of the device */
  gboolean downgrade;        /* PLAINTEXT from a buddy who has had a key or who
                                encrypted before (also while its keys are
                                rejected, undecided or changed) */
  E2eeLearnResult learned;   /* OFFER (and ERROR for a refused offer) */
  char *reply;               /* OFFER: an answer to send back; ERROR: a new
                                session start (an empty message) to send back so
                                a broken session heals; or NULL */
  GPtrArray *new_devices;    /* OFFER: E2eeKey of newly seen devices, or NULL */
  GError *error;             /* ERROR; WITHHELD (explanation).  An offer whose key
                                set is refused is an ERROR with
                                E2EE_ERROR_KEY_ELSEWHERE and learned = REFUSED
                                (no reply) */
  guint suppressed;          /* ERROR E2EE_ERROR_FRAGMENT: malformed fragments of
                                this conversation dropped without a report since
                                the previous report */
  guint withheld_dropped;    /* WITHHELD: older withheld messages dropped to make
                                room (0 or 1) */
  gboolean weak;             /* MESSAGE, WITHHELD: sent in a session started
                                without a prekey, before our reply: whoever later
                                steals our identity key can read it */
} E2eeRecvResult;

/* Handles one incoming message text (markup already stripped) from @buddy,
 * treating @buddy as a contact (same as _full with contact TRUE).
 * @now is seconds on a monotonic clock (for fragment timeouts). */
void e2ee_context_receive (E2eeContext *ctx, E2eeAccountRecord *account,
                           const char *buddy, const char *text, gint64 now,
                           E2eeRecvResult *result);
/* As receive; @contact as for learn_keys_full (an offer from a stranger
 * is cached, not pinned, and still answered).  Malformed fragments are
 * counted; a conversation gets at most one E2EE_ERROR_FRAGMENT report per
 * minute (and all together at most 10 a minute), the others give PENDING.
 * Fragment reassembly is fair: a sender with a pinned key outranks one
 * without, and a conversation only loses a buffer to one holding fewer
 * (see e2ee_reassembler_set_fair). */
void e2ee_context_receive_full (E2eeContext *ctx, E2eeAccountRecord *account,
                                const char *buddy, const char *text, gint64 now,
                                gboolean contact, E2eeRecvResult *result);
void e2ee_recv_result_clear (E2eeRecvResult *result);
/* Malformed fragments seen (all conversations), reported or not. */
guint64 e2ee_context_malformed_fragments (E2eeContext *ctx);

/* Hands out, oldest first, the withheld messages of @buddy whose device
 * is now trusted (TOFU or VERIFIED; sender_trust says which); messages of
 * devices still undecided stay held.  (new array of E2eeWithheldMessage;
 * freeing it wipes them.)  For own devices use the account's own name. */
GPtrArray *e2ee_context_take_withheld (E2eeContext *ctx, E2eeAccountRecord *account,
                                       const char *buddy);
/* Withheld messages held for @buddy (NULL: all conversations). */
guint e2ee_context_withheld_count (E2eeContext *ctx, E2eeAccountRecord *account,
                                   const char *buddy);

/* Trust decisions.  @kid may be a unique prefix of a device's kid, or NULL
 * for the one undecided device of the buddy.  A prefix that matches
 * several devices, or NULL while several are undecided, changes nothing
 * (E2EE_ERROR_AMBIGUOUS, the message lists them).  Trusting clears key_changed
 * (and retires, as REJECTED, the replaced keys).  Rejecting wipes the
 * device's withheld messages.  For the account's own name (own devices)
 * @kid is required; prefer e2ee_context_set_own_trust. */
gboolean e2ee_context_set_trust (E2eeContext *ctx, E2eeAccountRecord *account,
                                 const char *buddy, const char *kid,
                                 E2eeTrust trust, GError **error);
/* Own devices: confirm (TOFU or VERIFIED) or reject (REJECTED) device
 * @kid (a unique prefix) of our own account.  Only then does a pending
 * own device receive our messages and get republished. */
gboolean e2ee_context_set_own_trust (E2eeContext *ctx, E2eeAccountRecord *account,
                                     const char *kid, E2eeTrust trust, GError **error);
/* The account's other devices (E2eeDeviceRecord*, borrowed; new array):
 * trust UNDECIDED = pending, TOFU/VERIFIED = confirmed, REJECTED. */
GPtrArray *e2ee_context_own_devices (E2eeContext *ctx, E2eeAccountRecord *account);
/* "/e2ee verify all": marks VERIFIED exactly the devices of @buddy that
 * are TOFU, never UNDECIDED (new, changed, own pending) or REJECTED ones;
 * *@n_verified (nullable) says how many.  The host must first show every
 * such device's whole safety number (e2ee_safety_number, 60 digits) and
 * ask the user to compare each in full.  FALSE (E2EE_ERROR_NO_KEY) if
 * there was no TOFU device. */
gboolean e2ee_context_verify_all (E2eeContext *ctx, E2eeAccountRecord *account,
                                  const char *buddy, guint *n_verified, GError **error);
/* Forgets the trust in every key of @buddy (and what is withheld or
 * cached for them): each device becomes REJECTED, keeping its replay
 * state; the policy and the record stay, so the buddy still has had a key
 * and the next key learned is a KEY CHANGE (never TOFU) that needs
 * e2ee_context_set_trust.  FALSE (E2EE_ERROR_NO_KEY) when no device was
 * left to forget. */
gboolean e2ee_context_reset (E2eeContext *ctx, E2eeAccountRecord *account,
                             const char *buddy, GError **error);
/* Marks @buddy as having had a key although none is known under that
 * name (the host saw a known buddy go on under it, e.g. an IRC nick
 * change): sending blocks (E2EE_ERROR_UNTRUSTED) and the first key learned
 * for @buddy is E2EE_LEARN_KEY_CHANGED (UNDECIDED), never a first contact,
 * until the user accepts a device.  Persisted (as key_changed on a record
 * without devices).  No-op if @buddy has had a key; FALSE for an invalid
 * name. */
gboolean e2ee_context_mark_had_key (E2eeContext *ctx, E2eeAccountRecord *account,
                                    const char *buddy, GError **error);
/* FALSE (nothing recorded) for an invalid name. */
gboolean e2ee_context_set_policy (E2eeContext *ctx, E2eeAccountRecord *account,
                                  const char *buddy, E2eePolicy policy);

G_END_DECLS
