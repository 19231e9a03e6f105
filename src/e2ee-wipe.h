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
