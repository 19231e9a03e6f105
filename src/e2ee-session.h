/* purple-e2ee — the one entry point a messaging client calls: turning
 * outgoing text into pieces to send and incoming pieces into text, learning
 * and trusting keys.  Knows nothing of libpurple; the host passes names.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-fragment.h"
#include "e2ee-keyring.h"
#include "e2ee-offer.h"

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

/* The account record, with a new identity key generated if it has none.
 * *@created tells whether one was made (the host then saves). */
E2eeAccountRecord *e2ee_context_ensure_account (E2eeContext *ctx,
                                                const char *protocol,
                                                const char *name,
                                                gboolean *created,
                                                GError **error);

/* What this installation publishes for @account: its own public key first,
 * then the account's other devices it trusts. (new array of E2eeKey) */
GPtrArray *e2ee_context_own_keyset (E2eeContext *ctx, E2eeAccountRecord *account);

typedef enum {
  E2EE_LEARN_NOTHING_NEW = 0,
  E2EE_LEARN_FIRST_CONTACT,   /* pinned (TOFU) */
  E2EE_LEARN_NEW_DEVICE,      /* a further device: needs the user's trust */
  E2EE_LEARN_KEY_CHANGED,     /* every pinned key replaced: sending blocked */
} E2eeLearnResult;

/* Records a key set published by @buddy (from a profile, status or offer).
 * Our own key is ignored in our own account's set.  @new_devices (nullable)
 * receives the E2eeKey of each device not seen before. */
E2eeLearnResult e2ee_context_learn_keys (E2eeContext *ctx,
                                         E2eeAccountRecord *account,
                                         const char *buddy, GPtrArray *keys,
                                         GPtrArray **new_devices);

typedef enum {
  E2EE_SEND_ENCRYPT,     /* e2ee_context_encrypt() will work */
  E2EE_SEND_PLAINTEXT,   /* policy allows plaintext (off, or opportunistic and no key) */
  E2EE_SEND_BLOCK,       /* must not send: *error says why (NO_KEY, UNTRUSTED, ...) */
} E2eeSendDecision;

E2eeSendDecision e2ee_context_send_decision (E2eeContext *ctx,
                                             E2eeAccountRecord *account,
                                             const char *buddy, GError **error);

/* Encrypts @plaintext to every trusted device of @buddy and the account's
 * other trusted devices, armors it and splits it into pieces of at most
 * @budget bytes (0: one piece).  Returns a NULL-terminated strv. */
char **e2ee_context_encrypt (E2eeContext *ctx, E2eeAccountRecord *account,
                             const char *buddy, const char *plaintext,
                             gsize budget, GError **error);

typedef enum {
  E2EE_RECV_PLAINTEXT = 0,   /* not ours: show as is (downgrade flag may be set) */
  E2EE_RECV_PENDING,         /* a fragment was kept; show nothing */
  E2EE_RECV_MESSAGE,         /* decrypted: show plaintext */
  E2EE_RECV_OFFER,           /* a key offer/answer was handled; show nothing */
  E2EE_RECV_ERROR,           /* show a system line from error; never the text */
} E2eeRecvKind;

typedef struct {
  E2eeRecvKind kind;
  char *plaintext;           /* MESSAGE: secret, freed with the result */
  E2eeTrust sender_trust;    /* MESSAGE: trust of the sending device */
  char *sender_kid;          /* MESSAGE: kid of the sending device */
  gboolean downgrade;        /* PLAINTEXT from a buddy who encrypted before */
  E2eeLearnResult learned;   /* OFFER */
  char *reply;               /* OFFER: an answer to send back, or NULL */
  GPtrArray *new_devices;    /* OFFER: E2eeKey of newly seen devices, or NULL */
  GError *error;             /* ERROR */
} E2eeRecvResult;

/* Handles one incoming message text (markup already stripped) from @buddy.
 * @now is seconds on a monotonic clock (for fragment timeouts). */
void e2ee_context_receive (E2eeContext *ctx, E2eeAccountRecord *account,
                           const char *buddy, const char *text, gint64 now,
                           E2eeRecvResult *result);
void e2ee_recv_result_clear (E2eeRecvResult *result);

/* Trust decisions.  @kid may be a unique prefix of a device's kid, or NULL
 * for every undecided device of the buddy.  Trusting clears key_changed. */
gboolean e2ee_context_set_trust (E2eeContext *ctx, E2eeAccountRecord *account,
                                 const char *buddy, const char *kid,
                                 E2eeTrust trust, GError **error);
/* Forgets every key of @buddy. */
gboolean e2ee_context_reset (E2eeContext *ctx, E2eeAccountRecord *account,
                             const char *buddy, GError **error);
gboolean e2ee_context_set_policy (E2eeContext *ctx, E2eeAccountRecord *account,
                                  const char *buddy, E2eePolicy policy);

G_END_DECLS
