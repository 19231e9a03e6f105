/* purple-e2ee — envelope v1: binary layout, sealing, opening and armor.
 * The layout is specified in docs/PROTOCOL.md §5.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-aead.h"
#include "e2ee-jwk.h"

G_BEGIN_DECLS

#define E2EE_ENVELOPE_VERSION 1
#define E2EE_ENVELOPE_FLAG_PADDED 0x01u
#define E2EE_ENVELOPE_MAX_RECIPIENTS 32
#define E2EE_ENVELOPE_MAX_PLAINTEXT (64 * 1024)
#define E2EE_ENVELOPE_COUNTER_MAX G_GUINT64_CONSTANT (0xFFFFFFFFFF) /* 40 bits */
#define E2EE_ARMOR_PREFIX "?E2E:"

typedef struct {
  guint8 id[E2EE_DEVICE_ID_LEN];       /* recipient device id */
  const guint8 *key;                   /* K(sender -> recipient), 32 bytes */
  E2eeAead *aead;                      /* optional: a handle already keyed with
                                          @key, reused to skip per-message set-up */
} E2eeRecipient;

typedef struct {
  guint8 caps;                         /* sender's capabilities */
  guint8 sender_id[E2EE_DEVICE_ID_LEN];
  guint64 counter;                     /* < 2^40 */
  const E2eeRecipient *recipients;
  guint n_recipients;                  /* 1..E2EE_ENVELOPE_MAX_RECIPIENTS */
  gsize pad_block;                     /* 0: no padding; else pad the body to a
                                          multiple of this, plus a random extra block */
  /* For test vectors only: fixed IV and message key (NULL = random). */
  const guint8 *fixed_iv;
  const guint8 *fixed_message_key;
  gsize fixed_pad_blocks;              /* extra blocks when fixed (vectors) */
} E2eeSealParams;

/* The clock part of the counter rule (PROTOCOL.md §7): 10 ms ticks since
 * 2020-01-01T00:00:00Z.  Senders use max(last + 1, this). */
guint64 e2ee_envelope_clock_counter (void);

/* The counter for the next envelope after *@last (the highest sent; 0 if
 * none), which it then becomes.  A clock beyond the 40-bit range (a bad
 * time source) is E2EE_ERROR_CLOCK and changes nothing, so sending works
 * again once the clock is right; a *@last beyond the range (never on the
 * wire) is ignored, and one at the very end of the range (reached through
 * an earlier clock jump) gives way to the clock. */
gboolean e2ee_envelope_next_counter (guint64 *last, guint64 *counter, GError **error);

/* Seals @plaintext into a binary envelope.  Returns the bytes. */
GBytes *e2ee_envelope_seal (const E2eeSealParams *params,
                            const guint8 *plaintext, gsize len,
                            GError **error);

/* A parsed, not yet authenticated envelope.  Everything read from it
 * before e2ee_envelope_open() succeeds is attacker-controlled. */
typedef struct _E2eeEnvelope E2eeEnvelope;

E2eeEnvelope *e2ee_envelope_parse (const guint8 *data, gsize len, GError **error);
void e2ee_envelope_free (E2eeEnvelope *env);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeEnvelope, e2ee_envelope_free)

guint8 e2ee_envelope_get_version (const E2eeEnvelope *env);
guint8 e2ee_envelope_get_caps (const E2eeEnvelope *env);
guint8 e2ee_envelope_get_flags (const E2eeEnvelope *env);
const guint8 *e2ee_envelope_get_sender_id (const E2eeEnvelope *env);
guint64 e2ee_envelope_get_counter (const E2eeEnvelope *env);
guint e2ee_envelope_get_n_recipients (const E2eeEnvelope *env);
const guint8 *e2ee_envelope_get_recipient_id (const E2eeEnvelope *env, guint index);
/* Index of @id among the recipients, or -1. */
gint e2ee_envelope_find_recipient (const E2eeEnvelope *env,
                                   const guint8 id[E2EE_DEVICE_ID_LEN]);

/* Authenticates and decrypts the body for recipient @index with @key =
 * K(sender -> that recipient).  On success *@plaintext is a new
 * NUL-terminated buffer (free with e2ee_secret_free(p, *len + 1)); on any
 * failure nothing is returned and the error is E2EE_ERROR_AEAD_TAG (or
 * E2EE_ERROR_ENVELOPE_TRAILING for bad padding inside a valid tag). */
G_GNUC_WARN_UNUSED_RESULT
gboolean e2ee_envelope_open (const E2eeEnvelope *env, guint index,
                             const guint8 key[E2EE_AEAD_KEY_LEN],
                             guint8 **plaintext, gsize *len, GError **error);

/* The same with a handle already keyed with K(sender -> recipient), so a
 * session does not pay for a cipher set-up on every message. */
G_GNUC_WARN_UNUSED_RESULT
gboolean e2ee_envelope_open_aead (const E2eeEnvelope *env, guint index,
                                  E2eeAead *aead, guint8 **plaintext, gsize *len,
                                  GError **error);

/* Armor: E2EE_ARMOR_PREFIX + unpadded base64url, one line, ASCII only. */
char *e2ee_armor_encode (GBytes *envelope);
/* TRUE if @text (after leading whitespace) starts with the armor prefix. */
gboolean e2ee_armor_detect (const char *text);
/* Decodes; tolerates surrounding whitespace only. */
GBytes *e2ee_armor_decode (const char *text, GError **error);

G_END_DECLS
