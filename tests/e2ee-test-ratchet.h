/* Test-only helpers for the ratchet tests: a session between Alice and
 * Bob built through the real session start, and assertions that a failed
 * open leaves the state byte-identical.  Include once per program, after
 * e2ee-test-rng.h.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-error.h"
#include "e2ee-ratchet.h"

#define T0 G_GUINT64_CONSTANT (1800000000)
#define DEV_A 0x100u
#define DEV_B 0x200u

typedef struct {
  E2eeKey *ik_a, *ik_b, *a_pub, *b_pub;
  E2eeSignKey *sig;
  E2eeEcSecret *spk;      /* Bob's prekey, id 9, versions {2} */
  E2eePrekey *pk;
  E2eeRatchet *a, *b;
  E2eeX3dhMode mode;
} Pair;

/* Alice starts a (new) session with Bob and Bob builds his side from her
 * first message, which he opens.  Replaces any sessions they had. */
static G_GNUC_UNUSED void
pair_session (Pair *p, const char *text, GBytes **first_out)
{
  g_autoptr (GBytes) first = NULL, pt = NULL;
  E2eeX3dhResult ra, rb;
  E2eeEcSecret *ek = NULL;
  E2eeV2Message m;
  g_autoptr (GError) error = NULL;

  g_clear_pointer (&p->a, e2ee_ratchet_free);
  g_clear_pointer (&p->b, e2ee_ratchet_free);
  {
    E2eeX3dhParty a = { p->ik_a, "prpl-jabber:alice@example.org", DEV_A, 0x02 };
    E2eeX3dhParty b = { p->b_pub, "prpl-jabber:bob@example.org", DEV_B, 0x02 };
    g_assert_true (e2ee_x3dh_initiate (&a, &b, p->mode == E2EE_X3DH_MODE_PREKEY ? p->pk : NULL,
                                       &ek, &ra, &error));
    g_assert_no_error (error);
    p->a = e2ee_ratchet_new_initiator (&ra, ek, p->a_pub, 0x02, DEV_A, DEV_B);
  }
  first = e2ee_ratchet_seal (p->a, (const guint8 *) text, strlen (text), &error);
  g_assert_no_error (error);
  /* Bob: parse the start, run his half, build the session, open. */
  g_assert_true (e2ee_v2_message_parse (g_bytes_get_data (first, NULL), g_bytes_get_size (first),
                                        &m, &error));
  g_assert_cmpuint (m.type, ==, E2EE_V2_TYPE_START);
  g_assert_cmpuint (m.mode, ==, p->mode);
  {
    E2eeX3dhParty a = { m.initiator, "prpl-jabber:alice@example.org", m.sender_device, m.versions };
    E2eeX3dhParty b = { p->ik_b, "prpl-jabber:bob@example.org", DEV_B, 0x02 };
    g_assert_true (e2ee_x3dh_respond (&b, &a, m.mode, p->mode == E2EE_X3DH_MODE_PREKEY ? p->spk : NULL,
                                      m.spk_id, m.dh_key, &rb, &error));
    g_assert_no_error (error);
    p->b = e2ee_ratchet_new_responder (&rb, m.dh_key, DEV_B, DEV_A);
  }
  e2ee_v2_message_clear (&m);
  pt = e2ee_ratchet_open (p->b, g_bytes_get_data (first, NULL), g_bytes_get_size (first), T0,
                          NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (pt, NULL), g_bytes_get_size (pt), text, strlen (text));
  e2ee_x3dh_result_clear (&ra);
  e2ee_x3dh_result_clear (&rb);
  if (first_out)
    *first_out = g_bytes_ref (first);
}

/* Identities from "<seed> alice" and "<seed> bob"; then the stream
 * "<seed> run" gives Bob's signing key and prekey, and the session. */
static G_GNUC_UNUSED void
pair_start (Pair *p, E2eeX3dhMode mode, const char *seed, GBytes **first_out)
{
  g_autoptr (GBytes) rec = NULL;
  g_autofree char *s1 = g_strconcat (seed, " alice", NULL);
  g_autofree char *s2 = g_strconcat (seed, " bob", NULL);
  g_autofree char *s3 = g_strconcat (seed, " run", NULL);
  g_autoptr (GError) error = NULL;

  p->mode = mode;
  p->ik_a = e2ee_test_identity (s1);
  p->ik_b = e2ee_test_identity (s2);
  p->a_pub = e2ee_key_public_copy (p->ik_a);
  p->b_pub = e2ee_key_public_copy (p->ik_b);
  e2ee_test_rng_seed (s3);
  p->sig = e2ee_sign_key_generate (NULL);
  g_assert_true (e2ee_prekey_create (p->sig, p->ik_b, DEV_B, 9, T0, 0x02, &p->spk, &rec, NULL));
  p->pk = e2ee_prekey_verify (g_bytes_get_data (rec, NULL), g_bytes_get_size (rec),
                              e2ee_sign_key_get_public (p->sig), p->b_pub, DEV_B, T0, &error);
  g_assert_no_error (error);
  pair_session (p, "hello", first_out);
}

static G_GNUC_UNUSED void
pair_free (Pair *p)
{
  e2ee_ratchet_free (p->a);
  e2ee_ratchet_free (p->b);
  e2ee_key_unref (p->ik_a);
  e2ee_key_unref (p->ik_b);
  e2ee_key_unref (p->a_pub);
  e2ee_key_unref (p->b_pub);
  e2ee_sign_key_free (p->sig);
  e2ee_ec_secret_free (p->spk);
  e2ee_prekey_free (p->pk);
  e2ee_test_rng_off ();
}

static G_GNUC_UNUSED GBytes *
seal (E2eeRatchet *s, const char *text)
{
  g_autoptr (GError) error = NULL;
  GBytes *c = e2ee_ratchet_seal (s, (const guint8 *) text, strlen (text), &error);

  g_assert_no_error (error);
  return c;
}

static G_GNUC_UNUSED void
open_ok (E2eeRatchet *s, GBytes *c, const char *want, E2eeRatchetOpened *info)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) pt = e2ee_ratchet_open (s, g_bytes_get_data (c, NULL), g_bytes_get_size (c),
                                             T0, info, &error);

  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (pt, NULL), g_bytes_get_size (pt), want, strlen (want));
}

/* Opening fails with @code and the state is byte-for-byte unchanged. */
static G_GNUC_UNUSED void
open_fails (E2eeRatchet *s, const guint8 *data, gsize len, guint64 now, int code)
{
  g_autoptr (GBytes) before = e2ee_ratchet_serialize (s);
  g_autoptr (GBytes) after = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) pt = e2ee_ratchet_open (s, data, len, now, NULL, &error);

  g_assert_null (pt);
  g_assert_error (error, E2EE_ERROR, code);
  after = e2ee_ratchet_serialize (s);
  g_assert_true (g_bytes_equal (before, after));
}

static G_GNUC_UNUSED void
open_fails_b (E2eeRatchet *s, GBytes *c, int code)
{
  open_fails (s, g_bytes_get_data (c, NULL), g_bytes_get_size (c), T0, code);
}

