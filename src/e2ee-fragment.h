/* purple-e2ee — splitting armored envelopes to fit small messages and
 * putting them back together.  Knows nothing of cryptography.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define E2EE_FRAGMENT_PREFIX "?E2F:"
#define E2EE_FRAGMENT_MAX_PIECES 256
#define E2EE_FRAGMENT_MIN_BUDGET 32

/* Splits @text into fragments of at most @budget bytes each.  If @text
 * fits it is returned unchanged as the only element.  Fragment syntax:
 *   ?E2F:<id 8 lower-hex>:<index 1..n>/<n>:<chunk>
 * Returns a NULL-terminated strv, or NULL with E2EE_ERROR_FRAGMENT_BUDGET
 * if @budget is too small or more than E2EE_FRAGMENT_MAX_PIECES would be
 * needed. */
char **e2ee_fragment_split (const char *text, gsize budget, GError **error);

/* TRUE if @text (after leading whitespace) looks like a fragment. */
gboolean e2ee_fragment_detect (const char *text);

/* Reassembly with bounded memory.  Buffers are keyed by a conversation key
 * (e.g. "account\nbuddy") and the fragment id; each conversation may have
 * at most @max_per_key pending messages, all together @max_total, each at
 * most @max_bytes; buffers older than @timeout_s seconds are dropped. */
typedef struct _E2eeReassembler E2eeReassembler;

E2eeReassembler *e2ee_reassembler_new (guint max_per_key, guint max_total,
                                       gsize max_bytes, guint timeout_s);
void e2ee_reassembler_free (E2eeReassembler *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeReassembler, e2ee_reassembler_free)

/* Feeds one fragment from conversation @key at time @now (seconds, from
 * g_get_monotonic_time()/G_USEC_PER_SEC in production, anything in tests).
 * Returns TRUE if it was accepted; then *@complete is the reassembled text
 * when this was the last missing piece (else NULL).  A malformed fragment
 * is E2EE_ERROR_FRAGMENT, a limit hit E2EE_ERROR_FRAGMENT_LIMIT; neither
 * disturbs other conversations' buffers. */
gboolean e2ee_reassembler_add (E2eeReassembler *r, const char *key,
                               const char *fragment, gint64 now,
                               char **complete, GError **error);

/* Drops buffers older than the timeout; returns how many were dropped. */
guint e2ee_reassembler_expire (E2eeReassembler *r, gint64 now);
guint e2ee_reassembler_pending (E2eeReassembler *r, const char *key /* nullable: all */);

G_END_DECLS
