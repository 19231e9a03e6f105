/* purple-e2ee — asynchronous session start for protocol v2
 * (PROTOCOL.md §4.3): X3DH with a signed prekey, or the weaker start
 * without one.
 *
 *   mode 1 (prekey):    IKM = DH(IK_I, SPK_R) || DH(EK_I, IK_R) || DH(EK_I, SPK_R)
 *   mode 2 (no prekey): IKM = DH(IK_I, IK_R) || DH(EK_I, IK_R)
 *   RK0 || CK0 = HKDF-SHA256(salt = none, IKM, info, 64)
 *   sid = SHA-256(info)
 * where info binds the mode, both identities, device tags, account names,
 * the prekey id and both version sets.  Mode 2 is not forward-secret for
 * anything the initiator sends before the first reply (whoever obtains
 * IK_R, now or later, reads it) and can be replayed; callers must show
 * that to the user until the session has a reply (e2ee_ratchet_is_weak).
 *
 * Ownership: the caller owns every input; E2eeX3dhResult is a plain struct
 * holding secrets: wipe it with e2ee_x3dh_result_clear.  The ephemeral
 * key is returned to the initiator, who hands it to the ratchet.
 * Failure rules: FALSE with @error set and @out wiped.  Account names must
 * be non-empty valid UTF-8 of at most E2EE_X3DH_ACCOUNT_MAX bytes
 * (E2EE_ERROR_V2_ACCOUNT); a prekey start without the prekey's private part is
 * E2EE_ERROR_V2_START.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-prekey.h"

G_BEGIN_DECLS

#define E2EE_X3DH_LABEL "PE2E v2 x3dh"
#define E2EE_X3DH_ACCOUNT_MAX 1024

typedef enum {
  E2EE_X3DH_MODE_PREKEY = 1,
  E2EE_X3DH_MODE_NO_PREKEY = 2,
} E2eeX3dhMode;

/* One side of a session: identity (private for ourselves), normalised
 * account identifier ("<protocol id>:<normalised name>"), device tag and
 * advertised protocol versions (bit set). */
typedef struct {
  const E2eeKey *identity;
  const char *account;
  guint32 device;
  guint8 versions;
} E2eeX3dhParty;

typedef struct {
  guint8 mode;
  guint32 spk_id;
  guint8 root[32];   /* RK0 */
  guint8 chain[32];  /* CK0: the initiator's first sending chain */
  guint8 sid[32];    /* session binding, authenticated in every message */
} E2eeX3dhResult;

void e2ee_x3dh_result_clear (E2eeX3dhResult *result);

/* Initiator: @prekey NULL selects mode 2.  Returns the new ephemeral key
 * in @ephemeral_out (its public part goes in the message header). */
gboolean e2ee_x3dh_initiate (const E2eeX3dhParty *self, const E2eeX3dhParty *peer,
                             const E2eePrekey *prekey, E2eeEcSecret **ephemeral_out,
                             E2eeX3dhResult *out, GError **error);

/* Responder: @self is ourselves (responder), @peer the initiator as the
 * start message names it; @spk is our prekey for @spk_id (NULL and 0 for
 * mode 2). */
gboolean e2ee_x3dh_respond (const E2eeX3dhParty *self, const E2eeX3dhParty *peer,
                            E2eeX3dhMode mode, const E2eeEcSecret *spk, guint32 spk_id,
                            const E2eeKey *ephemeral, E2eeX3dhResult *out,
                            GError **error);

/* The value a responder remembers per prekey to refuse a replayed start:
 * SHA-256("PE2E v2 replay" || mode || spk_id || EK_I). */
void e2ee_x3dh_replay_tag (E2eeX3dhMode mode, guint32 spk_id, const E2eeKey *ephemeral,
                           guint8 out[32]);

/* Crossed starts: both devices started a session before either heard from
 * the other.  Each side holds its own session (sid @ours) and the one it
 * answered (sid @theirs); both keep sending on the session with the
 * bytewise smaller sid, so they agree without a message.  The other is kept
 * for receiving until its chains age out.  TRUE if @ours is kept. */
gboolean e2ee_x3dh_crossed_keep_ours (const guint8 ours[32], const guint8 theirs[32]);

G_END_DECLS
