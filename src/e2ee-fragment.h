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
 * index and n are decimal without sign or leading zero; chunks are raw
 * slices of @text, never empty.  The id comes from gcry_create_nonce (it
 * only has to differ between messages in flight, it is not secret).
 * Returns a NULL-terminated strv (g_strfreev), or NULL with
 * E2EE_ERROR_FRAGMENT_BUDGET if @budget is below E2EE_FRAGMENT_MIN_BUDGET
 * or more than E2EE_FRAGMENT_MAX_PIECES would be needed, or
 * E2EE_ERROR_FRAGMENT if @text must be split but holds a byte outside
 * printable ASCII (0x20..0x7e), which the reassembler would refuse. */
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
 * Leading whitespace is skipped (as by detect); anything else outside the
 * syntax is refused, trailing newlines included: strip them first.
 * Returns TRUE if it was accepted; then *@complete is the reassembled text
 * (g_free) when this was the last missing piece (else NULL).  A piece
 * repeated with the same content is accepted and ignored.
 * Errors: E2EE_ERROR_FRAGMENT for a malformed fragment (syntax, id not
 * lower-case hex, numbers with sign/leading zero/out of range, index > n,
 * n differing from earlier pieces of the same id, a repeated index with
 * other content, control or non-ASCII bytes, empty chunk);
 * E2EE_ERROR_FRAGMENT_LIMIT for a limit hit (a new id while this
 * conversation has @max_per_key pending, or all have @max_total; a
 * message growing past @max_bytes).
 * A refused fragment changes no state at all: it neither evicts nor drops
 * any buffer, of this conversation or another.  A full conversation thus
 * refuses new messages until its stale buffers time out, rather than
 * losing one already in progress.  Memory is bounded by about
 * @max_total * (@max_bytes + E2EE_FRAGMENT_MAX_PIECES pointers). */
gboolean e2ee_reassembler_add (E2eeReassembler *r, const char *key,
                               const char *fragment, gint64 now,
                               char **complete, GError **error);

/* Fair mode (off by default; the session turns it on).  When all
 * @max_total buffers are held and a new message arrives, instead of being
 * refused it takes the slot of the oldest buffer of the *largest
 * offender*: a conversation of a lower rank if there is one (the one with
 * most buffers, then the oldest), otherwise one of the same rank that
 * holds at least two buffers more than the newcomer's conversation.  A
 * conversation therefore never loses a buffer to one holding as many as
 * itself or more, nor to one of a lower rank: one sender cycling through
 * many names (each at most @max_per_key) pushes out only its own buffers,
 * never another sender's single message in progress.  The per-conversation
 * cap still refuses (a conversation never evicts itself). */
void e2ee_reassembler_set_fair (E2eeReassembler *r, gboolean fair);

/* add() with a @rank for the conversation (higher = more trusted, e.g. 1
 * for buddies with a pinned key, 0 for anyone else); add() is rank 0. */
gboolean e2ee_reassembler_add_ranked (E2eeReassembler *r, const char *key, guint rank,
                                      const char *fragment, gint64 now,
                                      char **complete, GError **error);

/* How many buffers fair mode has evicted so far. */
guint64 e2ee_reassembler_evicted (E2eeReassembler *r);

/* Drops buffers whose first piece came more than the timeout before @now
 * (add() does this first, too); returns how many were dropped.
 * pending() counts buffers of conversation @key, or of all with NULL. */
guint e2ee_reassembler_expire (E2eeReassembler *r, gint64 now);
guint e2ee_reassembler_pending (E2eeReassembler *r, const char *key /* nullable: all */);
/* Chunk bytes held in all pending buffers (for limits and tests). */
gsize e2ee_reassembler_buffered_bytes (E2eeReassembler *r);

G_END_DECLS
