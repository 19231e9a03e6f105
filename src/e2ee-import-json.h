/* purple-e2ee — shared by the keyring import paths (e2ee-keyring-import.c,
 * e2ee-keyring-backup.c): strict reading of json-glib trees, the
 * buddy/device form both formats share, and writing a whole keyring in
 * one transaction.  Errors are E2EE_ERROR_KEYRING_CORRUPT.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "e2ee-keyring.h"
#include "e2ee-seal.h"
#include "e2ee-store.h"

G_BEGIN_DECLS

gboolean e2ee_ij_bad (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);
gboolean e2ee_ij_only_members (JsonObject *o, const char *const *allowed, const char *where,
                               GError **error);
const char *e2ee_ij_get_str (JsonObject *o, const char *name, const char *where,
                             GError **error);
gboolean e2ee_ij_get_int (JsonObject *o, const char *name, gint64 min, gint64 max,
                          gint64 *out, const char *where, GError **error);
gboolean e2ee_ij_get_bool (JsonObject *o, const char *name, gboolean *out, const char *where,
                           GError **error);
JsonObject *e2ee_ij_get_obj (JsonObject *o, const char *name, const char *where,
                             GError **error);
JsonArray *e2ee_ij_get_arr (JsonObject *o, const char *name, const char *where,
                            GError **error);
JsonObject *e2ee_ij_arr_obj (JsonArray *a, guint i, const char *where, GError **error);
gboolean e2ee_ij_get_b64 (JsonObject *o, const char *name, guint8 *out, gsize len,
                          const char *where, GError **error);
/* Overwrites every string of a tree that held secrets. */
void e2ee_ij_wipe_tree (JsonNode *node);
/* A JSON object (new node) or NULL. */
JsonNode *e2ee_ij_parse_text (const char *text, gssize len, GError **error);
/* A buddy with devices; @legacy allows keyring.json's replay and derived
 * members (replay state is kept, derived keys are not). */
E2eeBuddyRecord *e2ee_ij_read_buddy (JsonObject *o, gboolean legacy, GError **error);
/* Writes @accounts and, per account, the ordered @buddies lists in one
 * transaction into a store without accounts (else
 * E2EE_ERROR_KEYRING_NOT_EMPTY); @digest (may be NULL) is recorded as
 * the imported keyring.json's SHA-256. */
gboolean e2ee_ij_write_all (E2eeStore *store, const E2eeSeal *seal, GPtrArray *accounts,
                            GPtrArray *buddies, const char *digest, GError **error);

G_END_DECLS
