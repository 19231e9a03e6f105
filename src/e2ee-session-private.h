/* purple-e2ee — what the session modules (e2ee-session.c, e2ee-trust.c)
 * share; not part of the public API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-session.h"
#include "e2ee-strangers.h"
#include "e2ee-withheld.h"

G_BEGIN_DECLS

/* The context's withheld messages and strangers' cache. */
E2eeWithheld *e2ee_session_withheld (E2eeContext *ctx);
E2eeStrangers *e2ee_session_strangers (E2eeContext *ctx);

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

G_END_DECLS
