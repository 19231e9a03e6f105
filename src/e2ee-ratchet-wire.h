/* purple-e2ee — the byte layout of a protocol v2 message
 * (PROTOCOL.md §5.1).  All integers big-endian.
 *
 *   0   ver=2 | 1 type (1 message, 2 start) | 2 flags=0
 *   3   sender device tag (u32) | 7 recipient device tag (u32)
 *   11  DHs: sender's ratchet key, 65 bytes 04||X||Y
 *   76  PN (u32) | 80 N (u32)
 *   84  type 2 only: mode (u8) | IK_I (65) | prekey id (u32) | versions (u8)
 *   then IV (12) | ciphertext | tag (16)
 * Everything before the ciphertext is "the header" and is authenticated.
 *
 * Ownership: a parsed E2eeV2Message points into the caller's buffer (which
 * must outlive it) and owns the two validated keys; clear it with
 * e2ee_v2_message_clear.
 * Failure rules: the parser is strict — exact lengths, version 2, type 1
 * or 2, flags 0, valid points, mode 1 or 2 (mode 2 with prekey id 0),
 * versions including 2, ciphertext at most E2EE_V2_MAX_PLAINTEXT bytes —
 * and every violation is E2EE_ERROR_V2_FORMAT.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-aead.h"
#include "e2ee-ec.h"

G_BEGIN_DECLS

#define E2EE_V2_VERSION 2
#define E2EE_V2_TYPE_MESSAGE 1
#define E2EE_V2_TYPE_START 2
#define E2EE_V2_FIXED_LEN 84
#define E2EE_V2_START_LEN (1 + E2EE_EC_POINT_LEN + 4 + 1)  /* 71 */
#define E2EE_V2_HEADER_MAX (E2EE_V2_FIXED_LEN + E2EE_V2_START_LEN + E2EE_AEAD_IV_LEN)
#define E2EE_V2_OVERHEAD_MAX (E2EE_V2_HEADER_MAX + E2EE_AEAD_TAG_LEN)
#define E2EE_V2_MAX_PLAINTEXT 65536

typedef struct {
  guint8 type;
  guint32 sender_device;
  guint32 recipient_device;
  guint8 dh[E2EE_EC_POINT_LEN];
  E2eeKey *dh_key;
  guint32 pn;
  guint32 n;
  /* type 2 */
  guint8 mode;
  guint8 initiator_raw[E2EE_EC_POINT_LEN];
  E2eeKey *initiator;
  guint32 spk_id;
  guint8 versions;
  /* pointers into the parsed buffer */
  const guint8 *header;   /* == the buffer start */
  gsize header_len;       /* up to and including the IV */
  const guint8 *iv;
  const guint8 *ciphertext;
  gsize ciphertext_len;
  const guint8 *tag;
} E2eeV2Message;

gboolean e2ee_v2_message_parse (const guint8 *data, gsize len, E2eeV2Message *msg,
                                GError **error);
void e2ee_v2_message_clear (E2eeV2Message *msg);

/* The start prefix a sender repeats until it hears from the peer. */
typedef struct {
  guint8 mode;
  guint8 initiator[E2EE_EC_POINT_LEN];
  guint32 spk_id;
  guint8 versions;
} E2eeV2StartPrefix;

/* Writes the header (without IV) into @out (at least E2EE_V2_HEADER_MAX
 * bytes); returns its length.  @start may be NULL (type 1). */
gsize e2ee_v2_header_write (guint8 *out, guint32 sender_device, guint32 recipient_device,
                            const guint8 dh[E2EE_EC_POINT_LEN], guint32 pn, guint32 n,
                            const E2eeV2StartPrefix *start);

G_END_DECLS
