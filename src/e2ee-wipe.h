/* purple-e2ee — wiping secrets.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Overwrites @len bytes at @buf with zeros in a way the compiler cannot
 * elide.  NULL is accepted when @len is 0.  Use it on every exit path of a
 * function that held key material, failure paths included. */
void e2ee_wipe (void *buf, gsize len);

/* Allocates @len zeroed bytes for a secret.  Never returns NULL. */
guint8 *e2ee_secret_alloc (gsize len);

/* Wipes and frees a buffer from e2ee_secret_alloc() (or any g_malloc'd
 * buffer of @len bytes).  NULL is accepted. */
void e2ee_secret_free (void *buf, gsize len);

/* Memory for long-lived keys (direction keys held by cipher caches,
 * message keys, the keyring's seal key), kept apart from libgcrypt's secure
 * pool, which is small and belongs to the host: pages this module maps
 * itself, locked in RAM where the system allows it (mlock, within
 * RLIMIT_MEMLOCK), left out of core dumps, wiped on free.  Up to
 * E2EE_SECURE_SLOT bytes per allocation; larger requests, or a full arena
 * (E2EE_SECURE_SLOTS slots), get ordinary memory that is still wiped.
 * Never returns NULL.  Thread-safe.  Free only with e2ee_secure_free. */
#define E2EE_SECURE_SLOT 64
#define E2EE_SECURE_SLOTS 16384
guint8 *e2ee_secure_alloc (gsize len);
void e2ee_secure_free (void *buf, gsize len);
/* TRUE if @buf came from the arena (not the ordinary-memory fallback);
 * *@locked (nullable) tells whether its page is locked in RAM. */
gboolean e2ee_secure_owns (const void *buf, gboolean *locked);

/* Wipes the whole NUL-terminated string, then frees it.  For plaintexts,
 * passphrases and serialised private JWKs.  NULL is accepted. */
void e2ee_string_free (char *str);

/* Wipes and frees a GBytes' buffer if this is the last reference. */
void e2ee_bytes_free (GBytes *bytes);

/* Wipes the contents of a GString, then frees it.  NULL is accepted. */
void e2ee_gstring_free (GString *str);

/* Constant-time comparison of two equal-length buffers; TRUE if equal. */
gboolean e2ee_ct_equal (const void *a, const void *b, gsize len);

G_END_DECLS
