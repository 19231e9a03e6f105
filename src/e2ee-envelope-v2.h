/* purple-e2ee — the protocol v2 envelope: one text for one or several
 * recipient devices, each reached through its own ratchet session
 * (PROTOCOL.md §5.1 for the ratchet message inside).  All integers
 * big-endian.
 *
 *   byte 0 = 0x20 | 0x01 (multi) | 0x02 (padded); other values refused.
 *   single (0x20, 0x22): byte 0 || one ratchet message whose plaintext is
 *     the body plaintext.
 *   multi (0x21, 0x23): byte 0 || u8 n (2..32) || IV (12) || u32 L
 *     || body ciphertext (L) || body tag (16) || n x (u16 len || ratchet message)
 *     body = AES-256-GCM(MK, IV, AAD = bytes [0, 2) || "PE2E v2 body", pt);
 *     each slot's ratchet plaintext = MK (32) || SHA-256("PE2E v2 body hash"
 *     || bytes [0, end of body tag)) (32).
 *   Body plaintext: UTF-8 text without NUL, padded (flag 0x02) with
 *   0x80 0x00.. to a multiple of the block plus 0..3 random extra blocks;
 *   at most E2EE_V2_MAX_PLAINTEXT bytes after padding.  Empty text: a
 *   heartbeat.
 *
 * Ownership: a sealed envelope is a new GBytes (public: g_bytes_unref).
 * A parsed E2eeEnvelopeV2 owns nothing: every pointer in it points into
 * the caller's buffer, which must outlive it; there is nothing to free.
 * An opened text is a new NUL-terminated string holding a secret: free it
 * with e2ee_string_free.  The sessions stay the caller's.
 *
 * Failure rules:
 *  - Seal: every input fault (n outside 1..32, a session given twice, text
 *    not valid UTF-8, pad block above 1024, body above the limit) is
 *    E2EE_ERROR_V2_ENVELOPE and touches no session.  Once sealing starts,
 *    every session may have advanced, also when it fails (a ratchet error
 *    such as E2EE_ERROR_V2_STATE, or E2EE_ERROR_V2_ENVELOPE for sessions
 *    with different local device tags, seen only while sealing): save them
 *    all before sending, and after a failure too (nothing was sent, so no
 *    key is ever reused).
 *  - Parse: strict, and every fault is E2EE_ERROR_V2_ENVELOPE.
 *  - Open: on a copy of the session.  The caller's session is replaced
 *    (the old one freed) only when the ratchet message authenticates, and
 *    for multi the body hash matches and the body opens, and the text
 *    (unpadded) is valid UTF-8 without NUL.  On every failure the session
 *    is untouched byte for byte.  Codes: the ratchet's own
 *    (E2EE_ERROR_V2_DUPLICATE: drop silently; E2EE_ERROR_AEAD_TAG,
 *    V2_DEVICE, V2_SKIP_LIMIT, V2_START: not this session); after the
 *    ratchet message authenticated, a body hash mismatch or a body that
 *    does not open is E2EE_ERROR_V2_ENVELOPE; bad padding, invalid UTF-8
 *    or a NUL is E2EE_ERROR_ENVELOPE_TRAILING (as v1).
 * Not thread-safe per session.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-ratchet.h"

G_BEGIN_DECLS

#define E2EE_ENVELOPE_V2_BASE 0x20u
#define E2EE_ENVELOPE_V2_MULTI 0x01u
#define E2EE_ENVELOPE_V2_PADDED 0x02u
#define E2EE_ENVELOPE_V2_MAX_SLOTS 32
#define E2EE_ENVELOPE_V2_MAX_PAD_BLOCK 1024
#define E2EE_ENVELOPE_V2_MAX_EXTRA_BLOCKS 3
#define E2EE_ENVELOPE_V2_BODY_LABEL "PE2E v2 body"
#define E2EE_ENVELOPE_V2_HASH_LABEL "PE2E v2 body hash"
/* multi: byte 0, n, IV, L */
#define E2EE_ENVELOPE_V2_MULTI_HEAD (1 + 1 + E2EE_AEAD_IV_LEN + 4)
/* a multi slot's ratchet plaintext: MK || body hash */
#define E2EE_ENVELOPE_V2_SLOT_PLAINTEXT (E2EE_AEAD_KEY_LEN + 32)

typedef struct {
  guint32 recipient_device;   /* the ratchet header's recipient tag */
  guint32 sender_device;      /* ... and sender tag */
  guint8 type;                /* E2EE_V2_TYPE_MESSAGE or _START (a prefix names IK_I) */
  const guint8 *message;      /* the ratchet message, into the parsed buffer */
  gsize message_len;
} E2eeEnvelopeV2Slot;

/* A parsed, not yet authenticated envelope: everything in it is
 * attacker-controlled until e2ee_envelope_v2_open succeeds. */
typedef struct _E2eeEnvelopeV2 {
  const guint8 *data;         /* the whole envelope (the caller's buffer) */
  gsize len;
  gboolean multi;
  gboolean padded;
  guint32 sender_device;      /* equal in every slot (checked) */
  guint n_slots;              /* 1 for single */
  /* multi only */
  const guint8 *iv;
  const guint8 *body;         /* ciphertext, then the 16-byte tag */
  gsize body_len;             /* L */
  E2eeEnvelopeV2Slot slots[E2EE_ENVELOPE_V2_MAX_SLOTS];
} E2eeEnvelopeV2;

/* TRUE if @data looks like a v2 envelope (byte 0 in 0x20..0x23); says
 * nothing of its validity. */
gboolean e2ee_envelope_v2_is_v2 (const guint8 *data, gsize len);

/* Seals @text (NUL-terminated UTF-8; "" is a heartbeat) for @n sessions:
 * one gives the single layout, 2..32 the multi layout with slot i sealed
 * in @sessions[i].  @pad_block 0: no padding, else 1..1024.  Extra
 * padding blocks are left out where they would pass the size limit.
 * Draws, in this order: the extra block count (1 byte, only if padded;
 * value mod 4), MK and IV (multi only), then each session's seal. */
GBytes *e2ee_envelope_v2_seal (E2eeRatchet **sessions, guint n, const char *text,
                               gsize pad_block, GError **error);

gboolean e2ee_envelope_v2_parse (const guint8 *data, gsize len, E2eeEnvelopeV2 *out,
                                 GError **error);
/* Forgets a parsed envelope (zeroes the struct; it owns nothing, so this
 * is optional, and safe on a zeroed or failed one). */
void e2ee_envelope_v2_clear (E2eeEnvelopeV2 *env);

/* Opens slot @slot with *@session (whose peer tag the caller matched to
 * the slot's sender tag).  @info (nullable) is set on success only. */
G_GNUC_WARN_UNUSED_RESULT
char *e2ee_envelope_v2_open (const E2eeEnvelopeV2 *env, guint slot, E2eeRatchet **session,
                             guint64 now, E2eeRatchetOpened *info, GError **error);

G_END_DECLS
