/* Shared set-up for the libFuzzer targets: libgcrypt initialisation, two
 * fixed identity keys (so that seed inputs made once stay valid) and the
 * NUL-terminated copy most text parsers need.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <gcrypt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-jwk.h"

/* Alice sends, Bob receives.  Test keys only: published here on purpose. */
#define FUZZ_ALICE_JWK \
  "{\"kty\":\"EC\",\"crv\":\"P-256\"," \
  "\"x\":\"6gUTJ8us2gN3RjRJMhAAv3U1aaNbUu6dHbSZ3qhLzcU\"," \
  "\"y\":\"UUq5Uv5vJtV-HtGdwJNROUO2vC48FHz0QXf0UTNOl5M\"," \
  "\"d\":\"8hgCiJeBWtsJvOW-gyNGHsVEXITaUQsTfZlh_mY0Cgw\"}"
#define FUZZ_BOB_JWK \
  "{\"kty\":\"EC\",\"crv\":\"P-256\"," \
  "\"x\":\"jGGN6RdxbGp1lH4ViLhebkxUu7fbh17xlHtGpI0RTqU\"," \
  "\"y\":\"IUJjxC5Qp3FqThazb57zkIfdYLdpbJk1SfblB-ajieE\"," \
  "\"d\":\"LhoO6KO8YHIYGaNrDQOso6Qm_hBuaIr7WW6_KPxnaM8\"}"
#define FUZZ_ALICE "alice@example.test"
#define FUZZ_BOB "bob@example.test"
#define FUZZ_PROTOCOL "prpl-jabber"

/* libgcrypt's entropy collector allocates its state once, on the first
 * strong random request, and never frees it.  Nothing of ours. */
const char *__lsan_default_suppressions (void);
const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

static inline void
fuzz_init_gcrypt (void)
{
  guint8 warm[16];

  if (!gcry_control (GCRYCTL_INITIALIZATION_FINISHED_P))
    {
      gcry_check_version (NULL);
      gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
  if (!e2ee_gcrypt_init (NULL))
    abort ();
  /* Make the one-time allocations now, outside any input. */
  gcry_randomize (warm, sizeof warm, GCRY_STRONG_RANDOM);
  gcry_create_nonce (warm, sizeof warm);
}

static inline E2eeKey *
fuzz_fixed_key (const char *jwk)
{
  E2eeKey *key = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PRIVATE, NULL);

  if (key == NULL)
    abort ();
  return key;
}

/* A NUL-terminated copy of the input (free with g_free). */
static inline char *
fuzz_strndup (const uint8_t *data, size_t size)
{
  char *s = g_malloc (size + 1);

  memcpy (s, data, size);
  s[size] = '\0';
  return s;
}

/* Aborts (a finding) when a property that must hold does not. */
#define FUZZ_CHECK(cond) \
  do { if (!(cond)) { fprintf (stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); abort (); } } while (0)
