/* Session start of protocol v2: both sides agree, every bound input
 * changes the result, the weak start is what it says (IK_R alone opens
 * it), the prekey start is not (IK_R with a later prekey does not), and
 * fixed seeds give the bytes in tests/vectors/v2-x3dh.json.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-x3dh.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"
#include "e2ee-test-rng.h"

const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

#define T0 G_GUINT64_CONSTANT (1800000000)

typedef struct {
  E2eeKey *ik_a, *ik_b, *ik_a_pub, *ik_b_pub;
  E2eeSignKey *sig_b;
  E2eeEcSecret *spk_b;
  E2eePrekey *prekey;
  E2eeX3dhParty a, b, a_seen_by_b, b_seen_by_a;
} Fixture;

static void
set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GBytes) rec = NULL;
  g_autoptr (GError) error = NULL;

  f->ik_a = e2ee_test_identity ("x3dh alice");
  f->ik_b = e2ee_test_identity ("x3dh bob");
  f->ik_a_pub = e2ee_key_public_copy (f->ik_a);
  f->ik_b_pub = e2ee_key_public_copy (f->ik_b);
  e2ee_test_rng_seed ("x3dh bob signing");
  f->sig_b = e2ee_sign_key_generate (NULL);
  e2ee_test_rng_seed ("x3dh bob prekey");
  g_assert_true (e2ee_prekey_create (f->sig_b, f->ik_b, 0x200, 42, T0, 0x02, &f->spk_b, &rec,
                                     &error));
  f->prekey = e2ee_prekey_verify (g_bytes_get_data (rec, NULL), g_bytes_get_size (rec),
                                  e2ee_sign_key_get_public (f->sig_b), f->ik_b_pub, 0x200, T0,
                                  &error);
  g_assert_no_error (error);
  f->a = (E2eeX3dhParty) { f->ik_a, "prpl-jabber:alice@example.org", 0x100, 0x02 };
  f->b = (E2eeX3dhParty) { f->ik_b, "prpl-jabber:bob@example.org", 0x200, 0x02 };
  f->a_seen_by_b = (E2eeX3dhParty) { f->ik_a_pub, f->a.account, 0x100, 0x02 };
  f->b_seen_by_a = (E2eeX3dhParty) { f->ik_b_pub, f->b.account, 0x200, 0x02 };
  e2ee_test_rng_seed ("x3dh ephemeral");
}

static void
tear_down (Fixture *f, gconstpointer data)
{
  e2ee_test_rng_off ();
  e2ee_key_unref (f->ik_a);
  e2ee_key_unref (f->ik_b);
  e2ee_key_unref (f->ik_a_pub);
  e2ee_key_unref (f->ik_b_pub);
  e2ee_sign_key_free (f->sig_b);
  e2ee_ec_secret_free (f->spk_b);
  e2ee_prekey_free (f->prekey);
}

static void
assert_same (const E2eeX3dhResult *x, const E2eeX3dhResult *y)
{
  g_assert_cmpuint (x->mode, ==, y->mode);
  g_assert_cmpuint (x->spk_id, ==, y->spk_id);
  g_assert_cmpmem (x->root, 32, y->root, 32);
  g_assert_cmpmem (x->chain, 32, y->chain, 32);
  g_assert_cmpmem (x->sid, 32, y->sid, 32);
}

static void
assert_differs (const E2eeX3dhResult *x, const E2eeX3dhResult *y)
{
  g_assert_false (memcmp (x->root, y->root, 32) == 0);
  g_assert_false (memcmp (x->chain, y->chain, 32) == 0);
}

static E2eeEcSecret *
initiate (Fixture *f, const E2eePrekey *pk, E2eeX3dhResult *out)
{
  E2eeEcSecret *ek = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (e2ee_x3dh_initiate (&f->a, &f->b_seen_by_a, pk, &ek, out, &error));
  g_assert_no_error (error);
  return ek;
}

static void
test_agree (Fixture *f, gconstpointer data)
{
  E2eeX3dhResult ra, rb, wa, wb;
  g_autoptr (E2eeEcSecret) ek = initiate (f, f->prekey, &ra);
  g_autoptr (E2eeEcSecret) ek2 = initiate (f, NULL, &wa);
  g_autoptr (GError) error = NULL;

  g_assert_true (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_PREKEY, f->spk_b, 42,
                                    e2ee_ec_secret_get_public (ek), &rb, &error));
  g_assert_no_error (error);
  assert_same (&ra, &rb);
  g_assert_cmpuint (ra.mode, ==, 1);
  g_assert_cmpuint (ra.spk_id, ==, 42);
  g_assert_true (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_NO_PREKEY, NULL, 0,
                                    e2ee_ec_secret_get_public (ek2), &wb, &error));
  g_assert_no_error (error);
  assert_same (&wa, &wb);
  g_assert_cmpuint (wa.mode, ==, 2);
  assert_differs (&ra, &wa);
  e2ee_x3dh_result_clear (&ra);
  g_assert_true (memcmp (ra.root, (guint8[32]) { 0 }, 32) == 0);
}

/* Each bound input, changed on the responder's side only, gives another
 * session: a key re-published under another account name is useless. */
static void
test_binding (Fixture *f, gconstpointer data)
{
  E2eeX3dhResult ra, rb;
  g_autoptr (E2eeEcSecret) ek = initiate (f, f->prekey, &ra);
  const E2eeKey *epub = e2ee_ec_secret_get_public (ek);
  E2eeX3dhParty peer, self;

  for (int change = 0; change < 6; change++)
    {
      peer = f->a_seen_by_b;
      self = f->b;
      switch (change)
        {
        case 0: peer.account = "prpl-jabber:mallory@example.org"; break;
        case 1: self.account = "prpl-irc:bob@irc.example.org"; break;
        case 2: peer.device = 0x101; break;
        case 3: self.device = 0x201; break;
        case 4: peer.versions = 0x03; break;
        case 5: self.versions = 0x06; break;
        }
      g_assert_true (e2ee_x3dh_respond (&self, &peer, E2EE_X3DH_MODE_PREKEY, f->spk_b, 42, epub,
                                        &rb, NULL));
      assert_differs (&ra, &rb);
      g_assert_false (memcmp (ra.sid, rb.sid, 32) == 0);
    }
  /* the prekey id */
  g_assert_true (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_PREKEY, f->spk_b, 43,
                                    epub, &rb, NULL));
  assert_differs (&ra, &rb);
}

/* The property the two modes differ in.  An attacker who later obtains
 * IK_B (and whatever prekey Bob holds then, the first one deleted):
 * with a prekey start he cannot rebuild the keys; with the weak start he
 * can, from IK_B alone. */
static void
test_first_message_secrecy (Fixture *f, gconstpointer data)
{
  E2eeX3dhResult ra, wa, thief;
  g_autoptr (E2eeEcSecret) ek = initiate (f, f->prekey, &ra);
  g_autoptr (E2eeEcSecret) ek2 = initiate (f, NULL, &wa);
  g_autoptr (E2eeEcSecret) later_spk = e2ee_ec_secret_generate (NULL);

  g_assert_true (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_PREKEY, later_spk, 42,
                                    e2ee_ec_secret_get_public (ek), &thief, NULL));
  assert_differs (&ra, &thief);
  g_assert_true (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_NO_PREKEY, NULL, 0,
                                    e2ee_ec_secret_get_public (ek2), &thief, NULL));
  assert_same (&wa, &thief);
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  E2eeX3dhResult r;
  E2eeEcSecret *ek = NULL;
  g_autoptr (E2eeEcSecret) ek_ok = initiate (f, NULL, &r);
  const E2eeKey *epub = e2ee_ec_secret_get_public (ek_ok);
  char longname[E2EE_X3DH_ACCOUNT_MAX + 2];
  const char *bad_names[] = { "", "prpl-jabber:\xff\xfe", longname, NULL };
  E2eeX3dhParty self;
  GError *error = NULL;

  memset (longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  for (int i = 0; i < (int) G_N_ELEMENTS (bad_names); i++)
    {
      self = f->a;
      self.account = bad_names[i];
      g_assert_false (e2ee_x3dh_initiate (&self, &f->b_seen_by_a, NULL, &ek, &r, &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_ACCOUNT);
      g_assert_null (ek);
      g_clear_error (&error);
    }
  longname[E2EE_X3DH_ACCOUNT_MAX] = '\0'; /* exactly the maximum is fine */
  self = f->a;
  self.account = longname;
  g_assert_true (e2ee_x3dh_initiate (&self, &f->b_seen_by_a, NULL, &ek, &r, NULL));
  g_clear_pointer (&ek, e2ee_ec_secret_free);
  /* a prekey of Bob's used for Carol */
  {
    g_autoptr (E2eeKey) carol = e2ee_test_identity ("x3dh carol");
    E2eeX3dhParty c = { carol, "prpl-jabber:carol@example.org", 0x200, 0x02 };
    g_assert_false (e2ee_x3dh_initiate (&f->a, &c, f->prekey, &ek, &r, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_PREKEY_IDENTITY);
    g_clear_error (&error);
  }
  /* the responder cannot answer a prekey start without the prekey, nor a
   * weak start naming one */
  g_assert_false (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_PREKEY, NULL, 42,
                                     epub, &r, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_START);
  g_clear_error (&error);
  g_assert_false (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_NO_PREKEY, NULL, 5,
                                     epub, &r, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_START);
  g_clear_error (&error);
  /* no version 2 on one side */
  self = f->a;
  self.versions = 0x01;
  g_assert_false (e2ee_x3dh_initiate (&self, &f->b_seen_by_a, NULL, &ek, &r, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_START);
  g_clear_error (&error);
  /* our side without its private key */
  self = f->a;
  self.identity = f->ik_a_pub;
  g_assert_false (e2ee_x3dh_initiate (&self, &f->b_seen_by_a, NULL, &ek, &r, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
  g_clear_error (&error);
}

static void
test_replay_tag (Fixture *f, gconstpointer data)
{
  E2eeX3dhResult r;
  g_autoptr (E2eeEcSecret) e1 = initiate (f, NULL, &r);
  g_autoptr (E2eeEcSecret) e2 = initiate (f, NULL, &r);
  guint8 t1[32], t1b[32], t2[32], t3[32];

  e2ee_x3dh_replay_tag (1, 42, e2ee_ec_secret_get_public (e1), t1);
  e2ee_x3dh_replay_tag (1, 42, e2ee_ec_secret_get_public (e1), t1b);
  e2ee_x3dh_replay_tag (1, 42, e2ee_ec_secret_get_public (e2), t2);
  e2ee_x3dh_replay_tag (1, 43, e2ee_ec_secret_get_public (e1), t3);
  g_assert_cmpmem (t1, 32, t1b, 32);
  g_assert_false (memcmp (t1, t2, 32) == 0);
  g_assert_false (memcmp (t1, t3, 32) == 0);
}

/* Both start at once: each side answers the other's start too, and both
 * pick the same session to keep. */
static void
test_crossed (Fixture *f, gconstpointer data)
{
  E2eeX3dhResult a_own, b_own, a_answer, b_answer;
  E2eeEcSecret *ek_a = NULL, *ek_b = NULL;
  E2eeX3dhParty b_to_a = { f->ik_a_pub, f->a.account, 0x100, 0x02 };

  g_assert_true (e2ee_x3dh_initiate (&f->a, &f->b_seen_by_a, NULL, &ek_a, &a_own, NULL));
  g_assert_true (e2ee_x3dh_initiate (&f->b, &b_to_a, NULL, &ek_b, &b_own, NULL));
  g_assert_true (e2ee_x3dh_respond (&f->b, &f->a_seen_by_b, E2EE_X3DH_MODE_NO_PREKEY, NULL, 0,
                                    e2ee_ec_secret_get_public (ek_a), &b_answer, NULL));
  g_assert_true (e2ee_x3dh_respond (&f->a, &f->b_seen_by_a, E2EE_X3DH_MODE_NO_PREKEY, NULL, 0,
                                    e2ee_ec_secret_get_public (ek_b), &a_answer, NULL));
  assert_same (&a_own, &b_answer);
  assert_same (&b_own, &a_answer);
  g_assert_false (memcmp (a_own.sid, b_own.sid, 32) == 0);
  /* Alice keeps hers exactly when Bob drops his. */
  g_assert_true (e2ee_x3dh_crossed_keep_ours (a_own.sid, a_answer.sid)
                 != e2ee_x3dh_crossed_keep_ours (b_own.sid, b_answer.sid));
  g_assert_false (e2ee_x3dh_crossed_keep_ours (a_own.sid, a_own.sid));
  e2ee_ec_secret_free (ek_a);
  e2ee_ec_secret_free (ek_b);
}

static void
add_result (JsonObject *o, const char *prefix, const E2eeX3dhResult *r)
{
  g_autofree char *root = e2ee_test_hex (r->root, 32);
  g_autofree char *chain = e2ee_test_hex (r->chain, 32);
  g_autofree char *sid = e2ee_test_hex (r->sid, 32);
  g_autofree char *k1 = g_strconcat (prefix, "_root", NULL);
  g_autofree char *k2 = g_strconcat (prefix, "_chain", NULL);
  g_autofree char *k3 = g_strconcat (prefix, "_sid", NULL);

  json_object_set_string_member (o, k1, root);
  json_object_set_string_member (o, k2, chain);
  json_object_set_string_member (o, k3, sid);
}

static void
add_secret (JsonObject *o, const char *name, const E2eeEcSecret *s)
{
  guint8 d[32];
  g_autofree char *hex = NULL;

  g_assert_true (e2ee_ec_secret_to_bytes (s, d));
  hex = e2ee_test_hex (d, 32);
  e2ee_wipe (d, sizeof d);
  json_object_set_string_member (o, name, hex);
}

static void
test_vector (Fixture *f, gconstpointer data)
{
  JsonObject *o = json_object_new ();
  E2eeX3dhResult ra, wa;
  g_autoptr (E2eeEcSecret) ek = initiate (f, f->prekey, &ra);
  g_autoptr (E2eeEcSecret) ek2 = initiate (f, NULL, &wa);
  char *ja = e2ee_key_to_jwk (f->ik_a, TRUE, FALSE);
  char *jb = e2ee_key_to_jwk (f->ik_b, TRUE, FALSE);

  json_object_set_string_member (o, "description",
                                 "Session start (PROTOCOL.md section 4.3), both modes");
  json_object_set_string_member (o, "initiator_identity_jwk", ja);
  json_object_set_string_member (o, "responder_identity_jwk", jb);
  json_object_set_string_member (o, "initiator_account", f->a.account);
  json_object_set_string_member (o, "responder_account", f->b.account);
  json_object_set_int_member (o, "initiator_device", f->a.device);
  json_object_set_int_member (o, "responder_device", f->b.device);
  json_object_set_int_member (o, "initiator_versions", f->a.versions);
  json_object_set_int_member (o, "responder_versions", f->b.versions);
  json_object_set_int_member (o, "prekey_id", 42);
  add_secret (o, "prekey_d", f->spk_b);
  add_secret (o, "mode1_ephemeral_d", ek);
  add_result (o, "mode1", &ra);
  add_secret (o, "mode2_ephemeral_d", ek2);
  add_result (o, "mode2", &wa);
  e2ee_string_free (ja);
  e2ee_string_free (jb);
  e2ee_test_vector_check ("v2-x3dh.json", o);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, set_up, fn, tear_down)
  ADD ("/x3dh/agree", test_agree);
  ADD ("/x3dh/binding", test_binding);
  ADD ("/x3dh/first-message-secrecy", test_first_message_secrecy);
  ADD ("/x3dh/errors", test_errors);
  ADD ("/x3dh/replay-tag", test_replay_tag);
  ADD ("/x3dh/crossed", test_crossed);
  ADD ("/x3dh/vector", test_vector);
  return g_test_run ();
}
