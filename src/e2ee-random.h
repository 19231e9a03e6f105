/* purple-e2ee — the randomness protocol v2 draws on (ratchet keys,
 * ephemeral keys, IVs), in one place so tests can replay it.
 *
 * Ownership: nothing is allocated.  Failure: none (libgcrypt's generator
 * cannot fail once initialised; e2ee_gcrypt_init is the caller's job).
 *
 * The only way to make the output deterministic is a hook that is not part
 * of any production program: e2ee-random.c refers to it through a hidden
 * weak symbol, which is defined only by tests/e2ee-test-rng.h.  A program
 * that does not compile that header gets address NULL at link time, so no
 * run-time action (environment, dlopen, another plugin) can turn it on.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  E2EE_RANDOM_KEY,        /* short-lived secrets (ratchet, ephemeral, prekey
                           * scalars): GCRY_STRONG_RANDOM, ~10 us */
  E2EE_RANDOM_LONG_TERM,  /* the signing key: GCRY_VERY_STRONG_RANDOM, ~4 ms */
  E2EE_RANDOM_NONCE,      /* IVs: libgcrypt's nonce generator */
} E2eeRandomKind;

/* Fills @out with @len unpredictable bytes of the given kind. */
void e2ee_random_bytes (guint8 *out, gsize len, E2eeRandomKind kind);

/* The hook type (used only by the test header). */
typedef void (*E2eeRandomHook) (guint8 *out, gsize len, E2eeRandomKind kind,
                                gpointer user_data);
typedef struct {
  E2eeRandomHook hook;
  gpointer user_data;
} E2eeRandomOverride;

/* Reports a derived key to tests (forward-secrecy checks search state
 * snapshots for every key ever derived).  A no-op in production, through
 * the same hidden weak symbol mechanism as the random hook. */
void e2ee_key_log (const char *what, const guint8 *key, gsize len);
typedef void (*E2eeKeyLogHook) (const char *what, const guint8 *key, gsize len,
                                gpointer user_data);
typedef struct {
  E2eeKeyLogHook hook;
  gpointer user_data;
} E2eeKeyLogOverride;

G_END_DECLS
