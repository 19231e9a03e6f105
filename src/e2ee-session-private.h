/* purple-e2ee — what the session modules (e2ee-session.c, e2ee-trust.c)
 * share; not part of the public API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-aead.h"
#include "e2ee-session.h"
#include "e2ee-strangers.h"
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
  /* Cipher handles keyed by the 32-byte direction key they hold: opening
   * a handle costs several times a short message, so a conversation
   * reuses one.  Keyed by value, never by record pointer, so a handle can
   * never outlive or mismatch the key it was made for. */
  E2eeAeadCache *aead_cache;
  /* Plaintexts from devices not accepted yet (bounded, wiped). */
  E2eeWithheld *withheld;
  /* Key sets of non-contacts (bounded LRU, in memory only). */
  E2eeStrangers *strangers;
  /* Malformed-fragment reports: conv -> MalformedReport (bounded). */
  GHashTable *malformed;
  guint64 malformed_total;
  gint64 report_window_start;
  guint reports_in_window;
};

/* The context's withheld messages and strangers' cache. */
E2eeWithheld *e2ee_session_withheld (E2eeContext *ctx);
E2eeStrangers *e2ee_session_strangers (E2eeContext *ctx);

/* A keyed cipher handle for @key, from the context's cache. */
E2eeAead *e2ee_session_cached_aead (E2eeContext *ctx, const guint8 key[E2EE_KEY_LEN],
                                    GError **error);
/* Devices of @buddy (nullable) that are usable (TOFU/VERIFIED), or with
 * @usable FALSE those not rejected. */
guint e2ee_session_count_devices (E2eeBuddyRecord *buddy, gboolean usable);
/* Direction keys for @dev of @buddy_name, cached in the record until the
 * capabilities change. */
gboolean e2ee_session_device_keys (E2eeAccountRecord *account, const char *buddy_name,
                                   E2eeDeviceRecord *dev, GError **error);

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

G_END_DECLS
