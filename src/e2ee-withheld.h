/* purple-e2ee — messages held back: plaintexts from devices the user has
 * not accepted (new devices, changed keys, own devices awaiting
 * confirmation).  They are kept in memory only, bounded, and handed out
 * once the user trusts the device that sent them.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

#include "e2ee-keyring.h"

G_BEGIN_DECLS

/* Bounds used by the session: per conversation and in all.  When a bound
 * is hit the oldest message (of that conversation, or of all) is dropped
 * and wiped. */
#define E2EE_WITHHELD_PER_BUDDY 16
#define E2EE_WITHHELD_TOTAL 256

typedef struct {
  char *sender_kid;        /* kid of the device that sent it */
  char *plaintext;         /* secret: wiped by e2ee_withheld_message_free */
  E2eeTrust sender_trust;  /* trust of that device when it was released */
  gint64 received;         /* unix seconds */
} E2eeWithheldMessage;

void e2ee_withheld_message_free (E2eeWithheldMessage *message);

typedef struct _E2eeWithheld E2eeWithheld;

E2eeWithheld *e2ee_withheld_new (guint max_per_conv, guint max_total);
/* Wipes every message still held. */
void e2ee_withheld_free (E2eeWithheld *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeWithheld, e2ee_withheld_free)

/* Holds @plaintext (taken over: g_malloc'd or e2ee secret string; wiped
 * when dropped, taken or freed) from device @kid in conversation @conv.
 * Returns how many older messages were dropped to make room (0 or 1). */
guint e2ee_withheld_add (E2eeWithheld *w, const char *conv, const char *kid,
                         char *plaintext, gint64 received);

/* Decides, per held message's kid, whether take() hands it out. */
typedef gboolean (*E2eeWithheldPick) (const char *kid, gpointer data);

/* Removes the messages of @conv whose kid @pick accepts (all if @pick is
 * NULL) and returns them oldest first (new array of E2eeWithheldMessage,
 * freeing wipes them). */
GPtrArray *e2ee_withheld_take (E2eeWithheld *w, const char *conv,
                               E2eeWithheldPick pick, gpointer data);

/* Messages held for @conv, or in all with NULL. */
guint e2ee_withheld_count (E2eeWithheld *w, const char *conv);

G_END_DECLS
