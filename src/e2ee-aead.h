/* purple-e2ee — AES-256-GCM with the rules libgcrypt does not enforce:
 * a 12-byte IV always set, the full 16-byte tag always checked, and no
 * plaintext left in the output buffer when the tag does not match.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define E2EE_AEAD_KEY_LEN 32
#define E2EE_AEAD_IV_LEN 12
#define E2EE_AEAD_TAG_LEN 16

/* A cipher handle with its key set, reused across messages (opening a
 * handle polls for entropy and costs ~20x a small message).  Handles live
 * in ordinary memory, not in libgcrypt's secure pool: that pool is small
 * (32 KiB unless the host chose otherwise), shared with the host, and a
 * keyed AES-GCM context takes ~2 KiB of it, so hundreds of conversations
 * cannot keep theirs there.  libgcrypt wipes the context when it is
 * closed. */
typedef struct _E2eeAead E2eeAead;

E2eeAead *e2ee_aead_new (const guint8 key[E2EE_AEAD_KEY_LEN], GError **error);
void e2ee_aead_free (E2eeAead *aead);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeAead, e2ee_aead_free)

/* WARNING: never seal twice with one key and one IV.  Use
 * e2ee_aead_random_iv() for every sealing. */
gboolean e2ee_aead_seal (E2eeAead *aead, const guint8 iv[E2EE_AEAD_IV_LEN],
                         const guint8 *aad, gsize aad_len,
                         const guint8 *plaintext, gsize len,
                         guint8 *ciphertext, guint8 tag[E2EE_AEAD_TAG_LEN],
                         GError **error);

/* Decrypts @len bytes into @plaintext (may equal @ciphertext) and checks
 * the full tag.  On any failure @plaintext is wiped and
 * E2EE_ERROR_AEAD_TAG is returned. */
G_GNUC_WARN_UNUSED_RESULT
gboolean e2ee_aead_open (E2eeAead *aead, const guint8 iv[E2EE_AEAD_IV_LEN],
                         const guint8 *aad, gsize aad_len,
                         const guint8 *ciphertext, gsize len,
                         const guint8 tag[E2EE_AEAD_TAG_LEN],
                         guint8 *plaintext, GError **error);

/* A bounded cache of keyed handles, looked up by the key they hold (never
 * by a record pointer, so a handle cannot outlive or mismatch its key).
 * When full, the least recently used handle is closed.  A handle returned
 * by e2ee_aead_cache_get() stays valid until at least
 * E2EE_AEAD_CACHE_MIN - 1 other keys have been looked up in the same
 * cache, so the handles of all recipients of one envelope (at most
 * E2EE_ENVELOPE_MAX_RECIPIENTS) are valid together. */
#define E2EE_AEAD_CACHE_MIN 64
typedef struct _E2eeAeadCache E2eeAeadCache;

/* @max is raised to E2EE_AEAD_CACHE_MIN if lower. */
E2eeAeadCache *e2ee_aead_cache_new (guint max);
void e2ee_aead_cache_free (E2eeAeadCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeAeadCache, e2ee_aead_cache_free)
/* The cache's handle for @key (made now if there is none), or NULL with
 * E2EE_ERROR_CRYPTO. */
E2eeAead *e2ee_aead_cache_get (E2eeAeadCache *cache, const guint8 key[E2EE_AEAD_KEY_LEN],
                               GError **error);
guint e2ee_aead_cache_size (const E2eeAeadCache *cache);

/* Variable-length IV/tag entry points for known-answer tests only: they
 * reject any IV other than 12 bytes and any tag other than 16 bytes with
 * E2EE_ERROR_AEAD_PARAM (Wycheproof lists other sizes as invalid for us). */
gboolean e2ee_aead_open_checked (const guint8 *key, gsize key_len,
                                 const guint8 *iv, gsize iv_len,
                                 const guint8 *aad, gsize aad_len,
                                 const guint8 *ciphertext, gsize len,
                                 const guint8 *tag, gsize tag_len,
                                 guint8 *plaintext, GError **error);

/* A fresh unpredictable 96-bit IV (libgcrypt's nonce generator, which is
 * seeded from the strong pool and ~10x cheaper than gcry_randomize). */
void e2ee_aead_random_iv (guint8 iv[E2EE_AEAD_IV_LEN]);

/* Fresh key material from the strong pool. */
void e2ee_random_key (guint8 *out, gsize len);

G_END_DECLS
