/* purple-e2ee — sealing secrets at rest: a key from the passphrase
 * (Argon2id with enforced minimum costs) and AES-256-GCM per value, with
 * the identity of the row that holds it as associated data.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define E2EE_SEAL_SALT_LEN 16
#define E2EE_SEAL_CHECK_LEN 16
/* A sealed value: 12-byte IV, ciphertext, 16-byte tag. */
#define E2EE_SEAL_OVERHEAD (12 + 16)

/* Costs never go below these when sealing (Argon2id t = 3 passes over
 * m = 64 MiB, p = 1 lane; scrypt N = 2^15, r = 8 where libgcrypt has no
 * Argon2).  A file whose costs are lower can still be opened, and
 * e2ee_seal_is_weak() tells the caller to seal again with new costs. */
#define E2EE_SEAL_ARGON2_MIN_T 3
#define E2EE_SEAL_ARGON2_MIN_M 65536        /* KiB */
#define E2EE_SEAL_SCRYPT_MIN_N 32768
#define E2EE_SEAL_MIN_P 1
/* What a file may ask for: a crafted file cannot make us allocate
 * gigabytes or spin for minutes. */
#define E2EE_SEAL_MAX_T 16
#define E2EE_SEAL_MAX_M (1024 * 1024)
#define E2EE_SEAL_MAX_P 16

typedef struct {
  char kdf[16];                 /* "argon2id" or "scrypt" */
  guint32 t, m, p;              /* scrypt: t = 1, m = N */
  guint8 salt[E2EE_SEAL_SALT_LEN];
  guint8 check[E2EE_SEAL_CHECK_LEN];  /* tells a wrong passphrase from damage */
} E2eeSealSetting;

typedef struct _E2eeSeal E2eeSeal;

/* A new seal with a fresh salt and at least the minimum costs.  An empty
 * passphrase is E2EE_ERROR_KEYRING_PASSPHRASE. */
E2eeSeal *e2ee_seal_new (const char *passphrase, GError **error);

/* Re-derives the key of stored @params.  Unknown KDF or costs above the
 * maxima: E2EE_ERROR_KEYRING_CORRUPT; wrong passphrase (check differs):
 * E2EE_ERROR_KEYRING_PASSPHRASE. */
E2eeSeal *e2ee_seal_unlock (const char *passphrase, const E2eeSealSetting *params,
                            GError **error);

void e2ee_seal_free (E2eeSeal *seal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeSeal, e2ee_seal_free)

const E2eeSealSetting *e2ee_seal_get_params (const E2eeSeal *seal);
/* TRUE when the costs are below the minimum (an old or crafted file). */
gboolean e2ee_seal_is_weak (const E2eeSeal *seal);
/* The AES-256-GCM key (secure memory), for formats that seal in one piece. */
const guint8 *e2ee_seal_get_key (const E2eeSeal *seal);

/* Seals @len bytes: returns IV || ciphertext || tag
 * (@len + E2EE_SEAL_OVERHEAD bytes).  @aad names the row. */
GBytes *e2ee_seal_seal (const E2eeSeal *seal, const guint8 *aad, gsize aad_len,
                        const guint8 *plain, gsize len, GError **error);

/* Opens a sealed value into @out (exactly @out_len bytes expected).
 * Any mismatch (length, tag, other row's AAD): E2EE_ERROR_KEYRING_CORRUPT,
 * @out wiped. */
gboolean e2ee_seal_open (const E2eeSeal *seal, const guint8 *aad, gsize aad_len,
                         const guint8 *sealed, gsize sealed_len,
                         guint8 *out, gsize out_len, GError **error);

G_END_DECLS
