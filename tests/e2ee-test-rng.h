/* Test-only: a deterministic random source and a log of derived keys for
 * the protocol v2 tests.  Including this header DEFINES the hook variables
 * that src/e2ee-random.c refers to through hidden weak symbols; include it
 * in exactly one file of a test program, never in production code.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <gcrypt.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-ec.h"
#include "e2ee-random.h"
#include "e2ee-wipe.h"

E2eeRandomOverride e2ee_test_random_override;
E2eeKeyLogOverride e2ee_test_key_log_override;

/* Output block i = SHA-256(seed || i as 8 bytes big-endian); the seed is
 * SHA-256 of a label.  Keys and nonces come from the same stream, in the
 * order the code asks for them. */
typedef struct {
  guint8 seed[32];
  guint64 counter;
  guint8 block[32];
  guint used;
} E2eeTestDrbg;

static E2eeTestDrbg e2ee_test_drbg;

static void
e2ee_test_drbg_fill (guint8 *out, gsize len, E2eeRandomKind kind, gpointer data)
{
  E2eeTestDrbg *d = data;

  (void) kind;
  while (len > 0)
    {
      if (d->used == 32)
        {
          guint8 in[40];
          memcpy (in, d->seed, 32);
          for (int i = 0; i < 8; i++)
            in[32 + i] = (guint8) (d->counter >> (56 - 8 * i));
          d->counter++;
          gcry_md_hash_buffer (GCRY_MD_SHA256, d->block, in, sizeof in);
          d->used = 0;
        }
      *out++ = d->block[d->used++];
      len--;
    }
}

static G_GNUC_UNUSED void
e2ee_test_rng_seed (const char *label)
{
  gcry_md_hash_buffer (GCRY_MD_SHA256, e2ee_test_drbg.seed, label, strlen (label));
  e2ee_test_drbg.counter = 0;
  e2ee_test_drbg.used = 32;
  e2ee_test_random_override.hook = e2ee_test_drbg_fill;
  e2ee_test_random_override.user_data = &e2ee_test_drbg;
}

static G_GNUC_UNUSED void
e2ee_test_rng_off (void)
{
  e2ee_test_random_override.hook = NULL;
}

static G_GNUC_UNUSED void
e2ee_test_key_log_set (E2eeKeyLogHook hook, gpointer data)
{
  e2ee_test_key_log_override.hook = hook;
  e2ee_test_key_log_override.user_data = data;
}

/* An identity key (E2eeKey with its private part) from a seed label. */
static G_GNUC_UNUSED E2eeKey *
e2ee_test_identity (const char *label)
{
  g_autoptr (E2eeEcSecret) s = NULL;
  guint8 d[32];
  g_autofree char *x = NULL, *y = NULL, *dd = NULL, *jwk = NULL;
  E2eeKey *key;

  e2ee_test_rng_seed (label);
  s = e2ee_ec_secret_generate (NULL);
  g_assert_nonnull (s);
  g_assert_true (e2ee_ec_secret_to_bytes (s, d));
  x = e2ee_b64url_encode (e2ee_key_get_x (e2ee_ec_secret_get_public (s)), 32);
  y = e2ee_b64url_encode (e2ee_key_get_y (e2ee_ec_secret_get_public (s)), 32);
  dd = e2ee_b64url_encode (d, 32);
  jwk = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"%s\"}",
                         x, y, dd);
  key = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PRIVATE, NULL);
  g_assert_nonnull (key);
  e2ee_wipe (d, sizeof d);
  return key;
}


/* Compares @actual (consumed) with tests/vectors/@name byte for byte, as
 * json-glib prints it with two-space indentation.  With
 * E2EE_WRITE_VECTORS=1 in the environment the file is written instead
 * (only to create a vector for a new case; the bytes are then reviewed). */
static G_GNUC_UNUSED void
e2ee_test_vector_check (const char *name, JsonObject *actual)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *rel = g_build_filename ("vectors", name, NULL);
  g_autofree char *path = e2ee_test_data_path (rel);
  g_autofree char *text = NULL, *want = NULL, *printed = NULL;
  g_autoptr (GError) error = NULL;

  json_node_take_object (node, actual);
  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  printed = json_generator_to_data (gen, NULL);
  text = g_strconcat (printed, "\n", NULL);
  json_node_unref (node);
  if (g_strcmp0 (g_getenv ("E2EE_WRITE_VECTORS"), "1") == 0)
    {
      g_assert_true (g_file_set_contents (path, text, -1, &error));
      g_test_message ("wrote %s", path);
      return;
    }
  g_assert_true (g_file_get_contents (path, &want, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, want);
}
