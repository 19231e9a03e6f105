/* purple-e2ee — signed prekeys (protocol v2, PROTOCOL.md §4.1).
 *
 * A record is a fixed binary statement followed by its ECDSA P-256
 * signature (P1363) by the device's signing key:
 *   "PE2E v2 prekey" | fmt=1 | tp(IK) | device | prekey id | SPK | expiry |
 *   nver | versions[nver] || r || s
 * It travels base64url-encoded wherever the key set is published.
 *
 * Ownership: e2ee_prekey_create returns a new record (GBytes, public) and
 * a new private prekey (E2eeEcSecret, caller frees).  E2eePrekey is owned
 * by the caller and released with e2ee_prekey_free.
 * Failure rules: parsing is strict and the first failing check decides
 * the code, in this order: layout (E2EE_ERROR_PREKEY_FORMAT), version list
 * (E2EE_ERROR_PREKEY_VERSION), prekey point (E2EE_ERROR_PREKEY_FORMAT),
 * signature (E2EE_ERROR_SIGNATURE), identity and device
 * (E2EE_ERROR_PREKEY_IDENTITY), time (E2EE_ERROR_PREKEY_EXPIRED).
 * All times are Unix seconds supplied by the caller.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-sign.h"

G_BEGIN_DECLS

#define E2EE_PREKEY_LABEL "PE2E v2 prekey"
#define E2EE_PREKEY_FORMAT 1
#define E2EE_PREKEY_PERIOD (7 * 86400)            /* rotate weekly */
#define E2EE_PREKEY_LIFETIME (2 * E2EE_PREKEY_PERIOD) /* expiry = creation + this */
#define E2EE_PREKEY_KEEP (3 * E2EE_PREKEY_PERIOD)  /* private part deleted after */
#define E2EE_PREKEY_SKEW 86400                    /* clock difference tolerated */
#define E2EE_PREKEY_MAX_VERSIONS 8
#define E2EE_PREKEY_STATEMENT_MIN (14 + 1 + 32 + 4 + 4 + 65 + 8 + 1 + 1)
#define E2EE_PREKEY_RECORD_MAX (E2EE_PREKEY_STATEMENT_MIN - 1 \
                                + E2EE_PREKEY_MAX_VERSIONS + E2EE_SIGNATURE_LEN)

/* Protocol versions as a bit set: bit (v-1) for version v, v in 1..8. */
#define E2EE_V2_VERSIONS 0x02u

typedef struct {
  guint8 identity_tp[E2EE_THUMBPRINT_LEN];
  guint32 device;       /* the device tag of PROTOCOL.md §2.2 */
  guint32 id;           /* prekey id, chosen by the owner */
  E2eeKey *spk;         /* validated point (owned) */
  guint64 expires;      /* Unix seconds; unusable from this second on */
  guint8 versions;      /* bit set, always includes 2 */
} E2eePrekey;

void e2ee_prekey_free (E2eePrekey *prekey);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eePrekey, e2ee_prekey_free)

/* Makes a new prekey pair and its signed record; expiry is @created +
 * E2EE_PREKEY_LIFETIME.  @versions must include E2EE_V2_VERSIONS. */
gboolean e2ee_prekey_create (const E2eeSignKey *sign_key, const E2eeKey *identity,
                             guint32 device, guint32 id, guint64 created,
                             guint8 versions, E2eeEcSecret **secret_out,
                             GBytes **record_out, GError **error);

/* Parses a record and checks its signature under @sign_pub, that it names
 * @identity and @device, and that at @now it has not expired
 * (now < expires) and does not claim a longer life than allowed
 * (expires <= now + E2EE_PREKEY_LIFETIME + E2EE_PREKEY_SKEW). */
E2eePrekey *e2ee_prekey_verify (const guint8 *record, gsize len,
                                const E2eeKey *sign_pub, const E2eeKey *identity,
                                guint32 device, guint64 now, GError **error);

/* Rotation rules for the owner of a prekey made at @created:
 * a new one is due from created + PERIOD on (or when the clock has gone
 * back by more than SKEW); the private part must be deleted from
 * created + KEEP on (one period after its expiry, for delayed delivery). */
gboolean e2ee_prekey_rotation_due (guint64 created, guint64 now);
gboolean e2ee_prekey_delete_due (guint64 created, guint64 now);

G_END_DECLS
