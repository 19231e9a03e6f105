/* purple-e2ee — this device's protocol v2 material for one account: the
 * ECDSA signing key that signs its prekeys, the signed prekeys (the
 * current one and those still kept for late first messages) and, per
 * prekey, the tags of the session starts already accepted (so a replayed
 * start is refused while the prekey lives; PROTOCOL.md §4).
 * Rotation follows e2ee-prekey.h: a new prekey every PERIOD, each private
 * part deleted at KEEP.  Stored as one sealed OWN row (e2ee-store-v2.h).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-ec.h"
#include "e2ee-prekey.h"
#include "e2ee-sign.h"

G_BEGIN_DECLS

/* Prekeys kept at once (current + two older within KEEP), and start tags
 * remembered per prekey: a start beyond that is refused (only a peer that
 * completed that many authenticated starts within three weeks gets there). */
#define E2EE_V2OWN_MAX_PREKEYS 4
#define E2EE_V2OWN_MAX_TAGS 4096
/* Starts from devices the user has not accepted (new, changed, rejected):
 * their tags are kept apart, the last this many, so a device the server
 * injected can neither use up the budget of accepted devices' starts nor
 * push their tags out. */
#define E2EE_V2OWN_MAX_PENDING_TAGS 1024

typedef struct {
  guint32 id;
  guint64 created;
  E2eeEcSecret *secret;
  GBytes *record;          /* the signed record as published */
  GHashTable *tags;        /* GBytes (32) set: accepted starts of accepted devices */
  GPtrArray *pending_tags; /* GBytes (32), oldest first: starts of other devices */
} E2eeOwnPrekey;

typedef struct {
  E2eeSignKey *sign_key;
  GPtrArray *prekeys;      /* E2eeOwnPrekey*, oldest first */
  guint32 next_id;
  /* Starts without a prekey (mode 2) accepted, oldest first: they have no
   * prekey whose deletion would end a replay, so their tags are kept
   * here, the last E2EE_V2OWN_MAX_TAGS of them. */
  GPtrArray *weak_tags;    /* GBytes (32), accepted devices */
  GPtrArray *weak_pending; /* GBytes (32), other devices (E2EE_V2OWN_MAX_PENDING_TAGS) */
} E2eeV2Own;

/* A new signing key and no prekey yet (maintain makes one). */
E2eeV2Own *e2ee_v2own_new (GError **error);
void e2ee_v2own_free (E2eeV2Own *own);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeV2Own, e2ee_v2own_free)

/* The stored form (a secret: e2ee_bytes_free) and its strict parser
 * (E2EE_ERROR_KEYRING_CORRUPT for any fault). */
GBytes *e2ee_v2own_serialize (const E2eeV2Own *own);
E2eeV2Own *e2ee_v2own_parse (const guint8 *data, gsize len, GError **error);

/* At @now: makes a new prekey for @identity when none is current or
 * rotation is due, deletes those whose private part is due for deletion.
 * *@changed tells whether anything did. */
gboolean e2ee_v2own_maintain (E2eeV2Own *own, const E2eeKey *identity, guint64 now,
                              gboolean *changed, GError **error);
/* The newest prekey (NULL before the first maintain). */
const E2eeOwnPrekey *e2ee_v2own_current (const E2eeV2Own *own);
E2eeOwnPrekey *e2ee_v2own_find (E2eeV2Own *own, guint32 id);
/* TRUE if @tag was accepted before under @prekey. */
gboolean e2ee_v2own_tag_seen (const E2eeOwnPrekey *prekey, const guint8 tag[32]);
/* Records an accepted start from a device whose trust is @usable (TOFU or
 * VERIFIED): FALSE (E2EE_ERROR_V2_START) when the prekey has
 * E2EE_V2OWN_MAX_TAGS already.  Other devices' starts go to the pending
 * list (the oldest forgotten), never refused. */
gboolean e2ee_v2own_tag_add (E2eeOwnPrekey *prekey, const guint8 tag[32], gboolean usable,
                             GError **error);

/* Mode 2 starts: seen before?  Record one (the oldest forgotten beyond
 * E2EE_V2OWN_MAX_TAGS). */
gboolean e2ee_v2own_weak_tag_seen (const E2eeV2Own *own, const guint8 tag[32]);
void e2ee_v2own_weak_tag_add (E2eeV2Own *own, const guint8 tag[32], gboolean usable);

/* The device tag of protocol v2 for @identity: its 4-byte device id
 * (the thumbprint's first bytes) as a big-endian u32. */
guint32 e2ee_v2_device_tag (const E2eeKey *identity);

G_END_DECLS
