/* The protocol v2 envelope (src/e2ee-envelope-v2.h) over real ratchet
 * sessions: single and multi round trips, padding and limits, a
 * co-recipient's forged body, tampering and truncation (the session blob
 * byte-identical after every failure), colliding device tags, duplicates,
 * and the fixed bytes of tests/vectors/v2-envelope.json.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"
#include "e2ee-test-rng.h"
#include "e2ee-test-ratchet.h"

const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

#define ALICE "prpl-jabber:alice@example.org"
#define BOB "prpl-jabber:bob@example.org"
#define CAROL "prpl-jabber:carol@example.org"

/* A device: identity, account, tag and a verified prekey (id 9). */
typedef struct {
  E2eeKey *ik, *pub;
  const char *account;
  guint32 tag;
  E2eeSignKey *sig;
  E2eeEcSecret *spk;
  E2eePrekey *pk;
} Dev;

static void
dev_init (Dev *d, const char *label, const char *account, guint32 tag)
{
  g_autoptr (GBytes) rec = NULL;
  g_autoptr (GError) error = NULL;

  d->ik = e2ee_test_identity (label); /* the stream of @label goes on below */
  d->pub = e2ee_key_public_copy (d->ik);
  d->account = account;
  d->tag = tag;
  d->sig = e2ee_sign_key_generate (NULL);
  g_assert_true (e2ee_prekey_create (d->sig, d->ik, tag, 9, T0, 0x02, &d->spk, &rec, &error));
  d->pk = e2ee_prekey_verify (g_bytes_get_data (rec, NULL), g_bytes_get_size (rec),
                              e2ee_sign_key_get_public (d->sig), d->pub, tag, T0, &error);
  g_assert_no_error (error);
}

static void
dev_clear (Dev *d)
{
  e2ee_key_unref (d->ik);
  e2ee_key_unref (d->pub);
  e2ee_sign_key_free (d->sig);
  e2ee_ec_secret_free (d->spk);
  e2ee_prekey_free (d->pk);
}

/* @from starts a session with @to from its prekey (no message yet). */
static E2eeRatchet *
initiate (const Dev *from, const Dev *to)
{
  E2eeX3dhParty a = { from->ik, from->account, from->tag, 0x02 };
  E2eeX3dhParty b = { to->pub, to->account, to->tag, 0x02 };
  E2eeX3dhResult r;
  E2eeEcSecret *ek = NULL;
  g_autoptr (GError) error = NULL;
  E2eeRatchet *s;

  g_assert_true (e2ee_x3dh_initiate (&a, &b, to->pk, &ek, &r, &error));
  g_assert_no_error (error);
  s = e2ee_ratchet_new_initiator (&r, ek, from->pub, 0x02, from->tag, to->tag);
  e2ee_x3dh_result_clear (&r);
  return s;
}

/* @self builds its side from the start message in @slot (from @from). */
static E2eeRatchet *
respond (const Dev *self, const Dev *from, const E2eeEnvelopeV2Slot *slot)
{
  E2eeV2Message m;
  E2eeX3dhResult r;
  g_autoptr (GError) error = NULL;
  E2eeRatchet *s;

  g_assert_true (e2ee_v2_message_parse (slot->message, slot->message_len, &m, &error));
  g_assert_cmpuint (m.type, ==, E2EE_V2_TYPE_START);
  {
    E2eeX3dhParty a = { m.initiator, from->account, m.sender_device, m.versions };
    E2eeX3dhParty b = { self->ik, self->account, self->tag, 0x02 };
    g_assert_true (e2ee_x3dh_respond (&b, &a, m.mode, self->spk, m.spk_id, m.dh_key, &r, &error));
  }
  s = e2ee_ratchet_new_responder (&r, m.dh_key, self->tag, m.sender_device);
  e2ee_v2_message_clear (&m);
  e2ee_x3dh_result_clear (&r);
  return s;
}

static GBytes *
seal_env (E2eeRatchet **s, guint n, const char *text, gsize pad)
{
  g_autoptr (GError) error = NULL;
  GBytes *env = e2ee_envelope_v2_seal (s, n, text, pad, &error);

  g_assert_no_error (error);
  g_assert_nonnull (env);
  return env;
}

static void
parse_ok (GBytes *b, E2eeEnvelopeV2 *env)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (e2ee_envelope_v2_parse (g_bytes_get_data (b, NULL), g_bytes_get_size (b), env,
                                         &error));
  g_assert_no_error (error);
}

/* Parses and opens slot @slot with *@s.  Returns 0 (text in *@text, if
 * given) or the error code; on failure the session is the same object
 * and its blob byte-identical, and nothing is returned. */
static int
try_open (const guint8 *data, gsize len, guint slot, E2eeRatchet **s, char **text)
{
  E2eeRatchet *was = *s;
  g_autoptr (GBytes) before = e2ee_ratchet_serialize (*s);
  g_autoptr (GBytes) after = NULL;
  g_autoptr (GError) error = NULL;
  E2eeEnvelopeV2 env;
  char *got = NULL;

  if (e2ee_envelope_v2_parse (data, len, &env, &error))
    {
      if (slot >= env.n_slots)
        return E2EE_ERROR_V2_ENVELOPE; /* the layout changed under a flip */
      got = e2ee_envelope_v2_open (&env, slot, s, T0, NULL, &error);
    }
  if (got != NULL)
    {
      g_assert_no_error (error);
      if (text)
        *text = got;
      else
        e2ee_string_free (got);
      return 0;
    }
  g_assert_nonnull (error);
  g_assert_true (error->domain == E2EE_ERROR);
  g_assert_true (*s == was);
  after = e2ee_ratchet_serialize (*s);
  g_assert_true (g_bytes_equal (before, after));
  return error->code;
}

static void
open_env_ok (GBytes *b, guint slot, E2eeRatchet **s, const char *want)
{
  char *text = NULL;

  g_assert_cmpint (try_open (g_bytes_get_data (b, NULL), g_bytes_get_size (b), slot, s, &text),
                   ==, 0);
  g_assert_cmpstr (text, ==, want);
  e2ee_string_free (text);
}

static void
open_env_fails (GBytes *b, guint slot, E2eeRatchet **s, int code)
{
  g_assert_cmpint (try_open (g_bytes_get_data (b, NULL), g_bytes_get_size (b), slot, s, NULL),
                   ==, code);
}

/* The ratchet plaintext of a slot, from a copy of @s (what a recipient
 * learns: for multi, MK || body hash). */
static GBytes *
slot_plaintext (GBytes *b, guint slot, E2eeRatchet *s)
{
  E2eeEnvelopeV2 env;
  g_autoptr (GBytes) blob = e2ee_ratchet_serialize (s);
  g_autoptr (E2eeRatchet) copy = e2ee_ratchet_deserialize (g_bytes_get_data (blob, NULL),
                                                           g_bytes_get_size (blob), NULL);
  GBytes *pt;

  parse_ok (b, &env);
  pt = e2ee_ratchet_open (copy, env.slots[slot].message, env.slots[slot].message_len, T0,
                          NULL, NULL);
  g_assert_nonnull (pt);
  return pt;
}

static GBytes *
blob_of (E2eeRatchet *s)
{
  return e2ee_ratchet_serialize (s);
}

/* ---- round trips ------------------------------------------------------ */

static void
test_single (void)
{
  Pair p = { 0 };
  g_autoptr (GBytes) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL;
  E2eeEnvelopeV2 env;
  const char *text = "sixteen bytes ü";  /* 16 bytes */

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "envelope single", NULL);
  g_assert_cmpuint (strlen (text), ==, 16);
  /* Alice has had no reply: her messages still carry the start prefix. */
  e1 = seal_env (&p.a, 1, text, 0);
  parse_ok (e1, &env);
  g_assert_cmpuint (g_bytes_get_size (e1), ==, 1 + E2EE_V2_OVERHEAD_MAX + 16);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (e1, NULL))[0], ==, 0x20);
  g_assert_true (e2ee_envelope_v2_is_v2 (g_bytes_get_data (e1, NULL), 1));
  g_assert_false (env.multi || env.padded);
  g_assert_cmpuint (env.n_slots, ==, 1);
  g_assert_cmpuint (env.sender_device, ==, DEV_A);
  g_assert_cmpuint (env.slots[0].recipient_device, ==, DEV_B);
  g_assert_cmpuint (env.slots[0].type, ==, E2EE_V2_TYPE_START);
  open_env_ok (e1, 0, &p.b, text);
  open_env_fails (e1, 0, &p.b, E2EE_ERROR_V2_DUPLICATE);
  /* Bob's reply, padded; then Alice without the prefix. */
  e2 = seal_env (&p.b, 1, "reply", 32);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (e2, NULL))[0], ==, 0x22);
  open_env_ok (e2, 0, &p.a, "reply");
  open_env_fails (e2, 0, &p.a, E2EE_ERROR_V2_DUPLICATE);
  e3 = seal_env (&p.a, 1, text, 0);
  g_assert_cmpuint (g_bytes_get_size (e3), ==, 1 + E2EE_V2_FIXED_LEN + 12 + 16 + 16);
  g_test_message ("single envelope, 16-byte text: %" G_GSIZE_FORMAT " bytes (overhead %"
                  G_GSIZE_FORMAT "; %" G_GSIZE_FORMAT " with the start prefix)",
                  g_bytes_get_size (e3), g_bytes_get_size (e3) - 16, g_bytes_get_size (e1) - 16);
  open_env_ok (e3, 0, &p.b, text);
  /* heartbeats */
  e4 = seal_env (&p.a, 1, "", 0);
  open_env_ok (e4, 0, &p.b, "");
  g_clear_pointer (&e4, g_bytes_unref);
  e4 = seal_env (&p.a, 1, "", 16);
  open_env_ok (e4, 0, &p.b, "");
  /* a slot of the other direction */
  g_clear_pointer (&e4, g_bytes_unref);
  e4 = seal_env (&p.a, 1, "to bob", 0);
  open_env_fails (e4, 0, &p.a, E2EE_ERROR_V2_DEVICE);
  open_env_ok (e4, 0, &p.b, "to bob");
  pair_free (&p);
}

static void
test_multi (void)
{
  Dev a, b, c, ph;
  E2eeRatchet *as[3], *rs[3] = { NULL };
  Dev *to[3] = { &b, &c, &ph };
  g_autoptr (GBytes) e1 = NULL, e2 = NULL, r = NULL, e3 = NULL, e4 = NULL;
  E2eeEnvelopeV2 env;
  const char *text = "sixteen bytes ü";

  dev_init (&a, "envelope multi alice", ALICE, 0x100);
  dev_init (&b, "envelope multi bob", BOB, 0x200);
  dev_init (&c, "envelope multi carol", CAROL, 0x300);
  dev_init (&ph, "envelope multi alice phone", ALICE, 0x101);  /* an own device */
  for (int i = 0; i < 3; i++)
    as[i] = initiate (&a, to[i]);
  e1 = seal_env (as, 3, "to all three: ü€", 0);
  parse_ok (e1, &env);
  g_assert_true (env.multi && !env.padded);
  g_assert_cmpuint (env.n_slots, ==, 3);
  g_assert_cmpuint (env.sender_device, ==, 0x100);
  g_assert_cmpuint (env.body_len, ==, strlen ("to all three: ü€"));
  for (int i = 0; i < 3; i++)
    {
      g_assert_cmpuint (env.slots[i].recipient_device, ==, to[i]->tag);
      rs[i] = respond (to[i], &a, &env.slots[i]);
    }
  /* Bob's session on Carol's slot: another device. */
  open_env_fails (e1, 1, &rs[0], E2EE_ERROR_V2_DEVICE);
  for (int i = 0; i < 3; i++)
    {
      open_env_ok (e1, i, &rs[i], "to all three: ü€");
      open_env_fails (e1, i, &rs[i], E2EE_ERROR_V2_DUPLICATE);
    }
  e2 = seal_env (as, 3, "padded", 64);
  parse_ok (e2, &env);
  g_assert_true (env.padded);
  g_assert_cmpuint (env.body_len % 64, ==, 0);
  for (int i = 2; i >= 0; i--)
    open_env_ok (e2, i, &rs[i], "padded");
  /* Bob replies (single); Alice's next envelope has no prefix for Bob. */
  r = seal_env (&rs[0], 1, "bob here", 0);
  open_env_ok (r, 0, &as[0], "bob here");
  e3 = seal_env (as, 3, "after the reply", 0);
  parse_ok (e3, &env);
  g_assert_cmpuint (env.slots[0].type, ==, E2EE_V2_TYPE_MESSAGE);
  g_assert_cmpuint (env.slots[1].type, ==, E2EE_V2_TYPE_START);
  for (int i = 0; i < 3; i++)
    open_env_ok (e3, i, &rs[i], "after the reply");
  /* Sizes for two recipients, both past the start. */
  {
    g_autoptr (GBytes) r2 = seal_env (&rs[1], 1, "carol here", 0);
    E2eeRatchet *two[2];
    gsize want;
    open_env_ok (r2, 0, &as[1], "carol here"); /* replaces as[1] */
    two[0] = as[0];
    two[1] = as[1];
    e4 = seal_env (two, 2, text, 0);
    want = E2EE_ENVELOPE_V2_MULTI_HEAD + 16 + 16
           + 2 * (2 + E2EE_V2_FIXED_LEN + 12 + E2EE_ENVELOPE_V2_SLOT_PLAINTEXT + 16);
    g_assert_cmpuint (g_bytes_get_size (e4), ==, want);
    g_test_message ("multi envelope, 2 recipients, 16-byte text: %" G_GSIZE_FORMAT
                    " bytes (overhead %" G_GSIZE_FORMAT ", +%d per further recipient)",
                    want, want - 16, 2 + E2EE_V2_FIXED_LEN + 12 + 64 + 16);
    open_env_ok (e4, 0, &rs[0], text);
    open_env_ok (e4, 1, &rs[1], text);
  }
  /* Sessions of two different sender devices in one envelope. */
  {
    E2eeRatchet *mixed[2] = { as[0], initiate (&ph, &c) };
    g_autoptr (GError) error = NULL;
    g_assert_null (e2ee_envelope_v2_seal (mixed, 2, "x", 0, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE);
    e2ee_ratchet_free (mixed[1]);
  }
  for (int i = 0; i < 3; i++)
    {
      e2ee_ratchet_free (as[i]);
      e2ee_ratchet_free (rs[i]);
    }
  dev_clear (&a);
  dev_clear (&b);
  dev_clear (&c);
  dev_clear (&ph);
  e2ee_test_rng_off ();
}

/* ---- padding and limits ----------------------------------------------- */

static void
seal_refused (E2eeRatchet **s, guint n, const char *text, gsize pad)
{
  GPtrArray *before = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_bytes_free);
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (before, blob_of (s[i]));
  g_assert_null (e2ee_envelope_v2_seal (s, n, text, pad, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GBytes) after = blob_of (s[i]);
      g_assert_true (g_bytes_equal (before->pdata[i], after));
    }
  g_ptr_array_unref (before);
}

/* A single envelope around a ratchet message of @pt (any bytes). */
static GBytes *
raw_single (E2eeRatchet *s, guint8 flag, const guint8 *pt, gsize len)
{
  g_autoptr (GBytes) m = e2ee_ratchet_seal (s, pt, len, NULL);
  GByteArray *out = g_byte_array_new ();

  g_byte_array_append (out, &flag, 1);
  g_byte_array_append (out, g_bytes_get_data (m, NULL), (guint) g_bytes_get_size (m));
  return g_byte_array_free_to_bytes (out);
}

static void
test_padding (void)
{
  Pair p = { 0 };
  g_autofree char *big = g_malloc (E2EE_V2_MAX_PLAINTEXT + 2);
  guint extras[4] = { 0 };
  gsize over = E2EE_V2_FIXED_LEN + 12 + 16 + 1;

  pair_start (&p, E2EE_X3DH_MODE_PREKEY, "envelope padding", NULL);
  {
    g_autoptr (GBytes) r = seal_env (&p.b, 1, "reply", 0);
    open_env_ok (r, 0, &p.a, "reply"); /* no prefix from here on */
  }
  for (gsize len = 0; len < 60; len++)
    {
      g_autofree char *t = g_strnfill (len, 'x');
      g_autoptr (GBytes) e = seal_env (&p.a, 1, t, 16);
      gsize body = g_bytes_get_size (e) - over, base = (len / 16 + 1) * 16;
      g_assert_cmpuint (body % 16, ==, 0);
      g_assert_cmpuint (body, >=, base);
      g_assert_cmpuint (body, <=, base + 3 * 16);
      extras[(body - base) / 16]++;
      open_env_ok (e, 0, &p.b, t);
    }
  for (int i = 0; i < 4; i++)
    g_assert_cmpuint (extras[i], >, 0);
  /* pad block 1 and 1024 */
  {
    g_autoptr (GBytes) e = seal_env (&p.a, 1, "abc", 1);
    g_autoptr (GBytes) f = seal_env (&p.a, 1, "abc", 1024);
    g_assert_cmpuint (g_bytes_get_size (e) - over, >=, 4);
    g_assert_cmpuint (g_bytes_get_size (e) - over, <=, 7);
    g_assert_cmpuint ((g_bytes_get_size (f) - over) % 1024, ==, 0);
    open_env_ok (e, 0, &p.b, "abc");
    open_env_ok (f, 0, &p.b, "abc");
  }
  /* The limit: 65536 body bytes after padding; extra blocks never push a
   * text that fits over it. */
  memset (big, 'a', E2EE_V2_MAX_PLAINTEXT + 1);
  big[E2EE_V2_MAX_PLAINTEXT + 1] = 0;
  seal_refused (&p.a, 1, big, 0);
  seal_refused (&p.a, 1, big + 1, 1);       /* 65536 + 0x80 */
  {
    g_autoptr (GBytes) e = seal_env (&p.a, 1, big + 1, 0);
    g_autoptr (GBytes) f = seal_env (&p.a, 1, big + 2, 1);
    g_assert_cmpuint (g_bytes_get_size (e) - over, ==, E2EE_V2_MAX_PLAINTEXT);
    g_assert_cmpuint (g_bytes_get_size (f) - over, ==, E2EE_V2_MAX_PLAINTEXT);
    open_env_ok (e, 0, &p.b, big + 1);
    open_env_ok (f, 0, &p.b, big + 2);
  }
  seal_refused (&p.a, 1, "abc", 1025);
  seal_refused (&p.a, 1, "bad \xff utf-8", 0);
  seal_refused (&p.a, 0, "x", 0);
  {
    E2eeRatchet *twice[2] = { p.a, p.a };
    seal_refused (twice, 2, "x", 0);
  }
  /* Authenticated bodies that are not text or badly padded. */
  {
    struct { guint8 flag; const char *pt; gsize len; } bad[] = {
      { 0x22, "abc", 3 },                 /* no 0x80 */
      { 0x22, "\0\0\0", 3 },              /* only zeros */
      { 0x22, "ab\x80\x01", 4 },          /* junk after the marker */
      { 0x20, "a\0b", 3 },                /* NUL */
      { 0x20, "caf\xc3", 4 },             /* cut UTF-8 */
      { 0x22, "caf\xc3\x80\x00", 6 },     /* cut UTF-8 once unpadded */
      { 0x20, "ok\x80\x00", 4 },          /* padding under the unpadded flag */
    };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr (GBytes) e = raw_single (p.a, bad[i].flag, (const guint8 *) bad[i].pt, bad[i].len);
        open_env_fails (e, 0, &p.b, E2EE_ERROR_ENVELOPE_TRAILING);
      }
    /* and a good one after them all: the session did not move */
    g_autoptr (GBytes) good = raw_single (p.a, 0x22, (const guint8 *) "ok\x80\0\0", 5);
    open_env_ok (good, 0, &p.b, "ok");
  }
  pair_free (&p);
}

/* ---- a co-recipient's forgery ------------------------------------------ */

/* Carol received an envelope for Bob and herself, so she knows MK.  She
 * makes a new body under MK (same and other length, with the IV she saw
 * or another) and passes it to Bob with his own slot: the body hash in
 * his slot, which she cannot reseal, refuses it. */
static void
test_forged_body (void)
{
  Dev a, b, c;
  E2eeRatchet *as[2], *rb, *rc;
  g_autoptr (GBytes) e = NULL, carol_pt = NULL;
  E2eeEnvelopeV2 env;
  const char *text = "meet at noon";
  const char *forged_texts[] = { "meet at nine", "meet me at the station instead" };

  dev_init (&a, "forgery alice", ALICE, 0x100);
  dev_init (&b, "forgery bob", BOB, 0x200);
  dev_init (&c, "forgery carol", CAROL, 0x300);
  as[0] = initiate (&a, &b);
  as[1] = initiate (&a, &c);
  e = seal_env (as, 2, text, 0);
  parse_ok (e, &env);
  rb = respond (&b, &a, &env.slots[0]);
  rc = respond (&c, &a, &env.slots[1]);
  carol_pt = slot_plaintext (e, 1, rc);
  g_assert_cmpuint (g_bytes_get_size (carol_pt), ==, 64);
  for (guint f = 0; f < G_N_ELEMENTS (forged_texts); f++)
    for (int new_iv = 0; new_iv < 2; new_iv++)
      {
        const guint8 *mk = g_bytes_get_data (carol_pt, NULL);
        const char *ft = forged_texts[f];
        gsize flen = strlen (ft), head = E2EE_ENVELOPE_V2_MULTI_HEAD;
        gsize old_end = head + env.body_len + 16;
        GByteArray *out = g_byte_array_new ();
        g_autoptr (E2eeAead) aead = e2ee_aead_new (mk, NULL);
        guint8 aad[2 + 12], *p;
        g_autoptr (GBytes) forged = NULL;

        g_byte_array_append (out, env.data, head);
        g_byte_array_set_size (out, head + flen + 16);
        p = out->data;
        if (new_iv)
          p[2] ^= 0x5a;
        p[head - 4] = p[head - 3] = p[head - 2] = 0;
        p[head - 1] = (guint8) flen;
        aad[0] = p[0];
        aad[1] = p[1];
        memcpy (aad + 2, "PE2E v2 body", 12);
        g_assert_true (e2ee_aead_seal (aead, p + 2, aad, sizeof aad, (const guint8 *) ft, flen,
                                       p + head, p + head + flen, NULL));
        g_byte_array_append (out, env.data + old_end, (guint) (env.len - old_end));
        forged = g_byte_array_free_to_bytes (out);
        open_env_fails (forged, 0, &rb, E2EE_ERROR_V2_ENVELOPE);
      }
  /* The sender's envelope still opens for both. */
  open_env_ok (e, 0, &rb, text);
  open_env_ok (e, 1, &rc, text);
  for (int i = 0; i < 2; i++)
    e2ee_ratchet_free (as[i]);
  e2ee_ratchet_free (rb);
  e2ee_ratchet_free (rc);
  dev_clear (&a);
  dev_clear (&b);
  dev_clear (&c);
  e2ee_test_rng_off ();
}

/* ---- tampering and truncation ----------------------------------------- */

static E2eeRatchet *
copy_of (E2eeRatchet *s)
{
  g_autoptr (GBytes) blob = blob_of (s);
  E2eeRatchet *c = e2ee_ratchet_deserialize (g_bytes_get_data (blob, NULL),
                                             g_bytes_get_size (blob), NULL);

  g_assert_nonnull (c);
  return c;
}

/* Every prefix of @e, @e with a byte appended, and @e with each byte
 * flipped (bits 0 and 7), opened in slot @slot by *@s: all refused with
 * the session unchanged, except flips inside another recipient's slot
 * (which the body hash does not cover: each slot is authenticated only to
 * its recipient), which must be refused or open, on a copy, to the very
 * same text.  Returns the refusals; *@passed counts the latter. */
static guint
tamper (GBytes *e, guint slot, E2eeRatchet **s, const char *text, guint *passed)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (e, &len);
  g_autofree guint8 *m = g_malloc (len + 1);
  E2eeEnvelopeV2 env;
  gsize own_start, own_end;
  guint refused = 0;

  *passed = 0;
  parse_ok (e, &env);
  own_start = (gsize) (env.slots[slot].message - d) - (env.multi ? 2 : 0);
  own_end = (gsize) (env.slots[slot].message - d) + env.slots[slot].message_len;
  for (gsize cut = 0; cut < len; cut++, refused++)
    g_assert_cmpint (try_open (d, cut, slot, s, NULL), !=, 0);
  memcpy (m, d, len);
  m[len] = 0;
  g_assert_cmpint (try_open (m, len + 1, slot, s, NULL), !=, 0);
  for (gsize i = 0; i < len; i++)
    for (int bit = 0; bit < 8; bit += 7)
      {
        gboolean covered = !env.multi || i < E2EE_ENVELOPE_V2_MULTI_HEAD + env.body_len + 16
                           || (i >= own_start && i < own_end);
        E2eeRatchet *probe = covered ? NULL : copy_of (*s);
        char *got = NULL;
        int code;

        memcpy (m, d, len);
        m[i] ^= (guint8) (1u << bit);
        code = try_open (m, len, slot, covered ? s : &probe, &got);
        if (code != 0)
          refused++;
        else if (covered)
          g_error ("flip of bit %d at %" G_GSIZE_FORMAT " opened", bit, i);
        else
          {
            g_assert_cmpstr (got, ==, text);
            e2ee_string_free (got);
            (*passed)++;
          }
        e2ee_ratchet_free (probe);
      }
  return refused;
}

static void
test_tamper (void)
{
  Dev a, b, c;
  E2eeRatchet *as[2], *rb, *rc;
  g_autoptr (GBytes) single = NULL, multi = NULL;
  E2eeEnvelopeV2 env;
  guint n, passed = 0;

  dev_init (&a, "tamper alice", ALICE, 0x100);
  dev_init (&b, "tamper bob", BOB, 0x200);
  dev_init (&c, "tamper carol", CAROL, 0x300);
  as[0] = initiate (&a, &b);
  as[1] = initiate (&a, &c);
  {
    g_autoptr (GBytes) first = seal_env (as, 2, "first", 0);
    parse_ok (first, &env);
    rb = respond (&b, &a, &env.slots[0]);
    rc = respond (&c, &a, &env.slots[1]);
    open_env_ok (first, 0, &rb, "first");
    open_env_ok (first, 1, &rc, "first");
  }
  multi = seal_env (as, 2, "tamper with me", 16);
  n = tamper (multi, 0, &rb, "tamper with me", &passed);
  g_test_message ("multi: %u altered envelopes refused; %u flips in the other slot "
                  "left Bob's text as it was", n, passed);
  g_assert_cmpuint (passed, >, 0);
  open_env_ok (multi, 0, &rb, "tamper with me");
  n = tamper (multi, 1, &rc, "tamper with me", &passed);
  open_env_ok (multi, 1, &rc, "tamper with me");
  single = seal_env (&as[0], 1, "single, tamper with me", 0);
  n = tamper (single, 0, &rb, NULL, &passed);
  g_assert_cmpuint (passed, ==, 0);
  g_test_message ("single: %u altered envelopes refused", n);
  open_env_ok (single, 0, &rb, "single, tamper with me");
  /* The padding flag of a single envelope is outside the ratchet's AAD:
   * switching it is still refused, both ways. */
  {
    g_autoptr (GBytes) plain = seal_env (&as[0], 1, "caf\xc3\x80", 0);  /* ends in 0x80 */
    g_autoptr (GBytes) padded = seal_env (&as[0], 1, "padded", 8);
    guint8 *x = g_memdup2 (g_bytes_get_data (plain, NULL), g_bytes_get_size (plain));
    guint8 *y = g_memdup2 (g_bytes_get_data (padded, NULL), g_bytes_get_size (padded));
    x[0] ^= E2EE_ENVELOPE_V2_PADDED;
    y[0] ^= E2EE_ENVELOPE_V2_PADDED;
    g_assert_cmpint (try_open (x, g_bytes_get_size (plain), 0, &rb, NULL), ==,
                     E2EE_ERROR_ENVELOPE_TRAILING);
    g_assert_cmpint (try_open (y, g_bytes_get_size (padded), 0, &rb, NULL), ==,
                     E2EE_ERROR_ENVELOPE_TRAILING);
    open_env_ok (plain, 0, &rb, "caf\xc3\x80");
    open_env_ok (padded, 0, &rb, "padded");
    g_free (x);
    g_free (y);
  }
  for (int i = 0; i < 2; i++)
    e2ee_ratchet_free (as[i]);
  e2ee_ratchet_free (rb);
  e2ee_ratchet_free (rc);
  dev_clear (&a);
  dev_clear (&b);
  dev_clear (&c);
  e2ee_test_rng_off ();
}

/* ---- colliding device tags -------------------------------------------- */

/* Two devices of Bob's share the tag 0x200: Alice seals a slot for each;
 * each device tries every slot with its tag, and authentication decides. */
static void
test_collision (void)
{
  Dev a, b1, b2;
  E2eeRatchet *as[2], *r1 = NULL, *r2 = NULL;
  g_autoptr (GBytes) e1 = NULL, e2 = NULL, e3 = NULL;
  E2eeEnvelopeV2 env;
  Dev *devs[2] = { &b1, &b2 };
  E2eeRatchet **rs[2] = { &r1, &r2 };

  dev_init (&a, "collision alice", ALICE, 0x100);
  dev_init (&b1, "collision bob laptop", BOB, 0x200);
  dev_init (&b2, "collision bob phone", BOB, 0x200);
  as[0] = initiate (&a, &b1);
  as[1] = initiate (&a, &b2);
  e1 = seal_env (as, 2, "to both of Bob's devices", 0);
  parse_ok (e1, &env);
  g_assert_cmpuint (env.slots[0].recipient_device, ==, env.slots[1].recipient_device);
  for (int d = 0; d < 2; d++)
    for (guint j = 0; j < env.n_slots; j++)
      {
        /* a start: build a session from each slot and keep the one that opens */
        E2eeRatchet *s = respond (devs[d], &a, &env.slots[j]);
        char *text = NULL;
        int code = try_open (g_bytes_get_data (e1, NULL), g_bytes_get_size (e1), j, &s, &text);
        if ((int) j == d)
          {
            g_assert_cmpint (code, ==, 0);
            g_assert_cmpstr (text, ==, "to both of Bob's devices");
            e2ee_string_free (text);
            *rs[d] = s;
          }
        else
          {
            g_assert_cmpint (code, ==, E2EE_ERROR_AEAD_TAG);
            e2ee_ratchet_free (s);
          }
      }
  /* With the sessions built, the other device's slot names a ratchet key
   * the session does not know: before its first send a responder calls
   * that a start (V2_START), after it a failed new chain (AEAD_TAG). */
  e2 = seal_env (as, 2, "again", 0);
  for (int d = 0; d < 2; d++)
    {
      open_env_fails (e2, 1 - d, rs[d], E2EE_ERROR_V2_START);
      open_env_ok (e2, d, rs[d], "again");
    }
  for (int d = 0; d < 2; d++)
    {
      g_autoptr (GBytes) r = seal_env (rs[d], 1, "reply", 0);
      open_env_ok (r, 0, &as[d], "reply");
    }
  e3 = seal_env (as, 2, "after the replies", 0);
  for (int d = 0; d < 2; d++)
    {
      open_env_fails (e3, 1 - d, rs[d], E2EE_ERROR_AEAD_TAG);
      open_env_ok (e3, d, rs[d], "after the replies");
    }
  g_clear_pointer (&e3, g_bytes_unref);
  e3 = seal_env (&as[1], 1, "to the phone only", 0);
  open_env_fails (e3, 0, &r1, E2EE_ERROR_AEAD_TAG);
  open_env_ok (e3, 0, &r2, "to the phone only");
  for (int i = 0; i < 2; i++)
    e2ee_ratchet_free (as[i]);
  e2ee_ratchet_free (r1);
  e2ee_ratchet_free (r2);
  dev_clear (&a);
  dev_clear (&b1);
  dev_clear (&b2);
  e2ee_test_rng_off ();
}

/* ---- limits and hand-made envelopes ----------------------------------- */

/* A multi envelope from @head_body (bytes [0, end of body tag)) and ratchet
 * messages as slots. */
static GBytes *
build_multi (const guint8 *head_body, gsize len, GBytes **slots, guint n)
{
  GByteArray *out = g_byte_array_new ();

  g_byte_array_append (out, head_body, (guint) len);
  for (guint i = 0; i < n; i++)
    {
      gsize l = g_bytes_get_size (slots[i]);
      guint8 be[2] = { (guint8) (l >> 8), (guint8) l };
      g_byte_array_append (out, be, 2);
      g_byte_array_append (out, g_bytes_get_data (slots[i], NULL), (guint) l);
    }
  return g_byte_array_free_to_bytes (out);
}

static void
parse_refused (const guint8 *d, gsize len)
{
  g_autoptr (GError) error = NULL;
  E2eeEnvelopeV2 env;

  g_assert_false (e2ee_envelope_v2_parse (d, len, &env, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE);
}

static void
test_limits (void)
{
  Dev a, b, c;
  E2eeRatchet *many[33], *as[2], *rb, *rc;
  g_autoptr (GBytes) e = NULL, good = NULL;
  E2eeEnvelopeV2 env;
  gsize len, head_len;
  const guint8 *d;
  g_autofree guint8 *m = NULL;

  dev_init (&a, "limits alice", ALICE, 0x100);
  dev_init (&b, "limits bob", BOB, 0x200);
  dev_init (&c, "limits carol", CAROL, 0x300);
  for (int i = 0; i < 33; i++)
    many[i] = initiate (&a, &b);
  seal_refused (many, 33, "one too many", 0);
  e = seal_env (many, 32, "thirty-two", 0);
  parse_ok (e, &env);
  g_assert_cmpuint (env.n_slots, ==, 32);
  for (guint j = 0; j < 32; j += 31)
    {
      E2eeRatchet *s = respond (&b, &a, &env.slots[j]);
      open_env_ok (e, j, &s, "thirty-two");
      e2ee_ratchet_free (s);
    }
  for (int i = 0; i < 33; i++)
    e2ee_ratchet_free (many[i]);

  /* Established sessions Alice -> Bob, Carol for hand-made envelopes. */
  as[0] = initiate (&a, &b);
  as[1] = initiate (&a, &c);
  good = seal_env (as, 2, "good", 0);
  parse_ok (good, &env);
  rb = respond (&b, &a, &env.slots[0]);
  rc = respond (&c, &a, &env.slots[1]);
  open_env_ok (good, 0, &rb, "good");
  open_env_ok (good, 1, &rc, "good");
  g_clear_pointer (&good, g_bytes_unref);
  good = seal_env (as, 2, "good", 0);
  d = g_bytes_get_data (good, &len);
  m = g_malloc (len);
  head_len = E2EE_ENVELOPE_V2_MULTI_HEAD + 4 + 16;
  parse_ok (good, &env);
  g_assert_cmpuint (env.body_len, ==, 4);
  {
    const guint8 counts[] = { 0, 1, 3, 33, 255 };
    const guint8 firsts[] = { 0x00, 0x1f, 0x24, 0x30, 0x02, 0xff };
    for (guint i = 0; i < G_N_ELEMENTS (counts); i++)
      {
        memcpy (m, d, len);
        m[1] = counts[i];
        parse_refused (m, len);
      }
    for (guint i = 0; i < G_N_ELEMENTS (firsts); i++)
      {
        memcpy (m, d, len);
        m[0] = firsts[i];
        g_assert_false (e2ee_envelope_v2_is_v2 (m, len));
        parse_refused (m, len);
      }
    /* L beyond the limit, or beyond the data */
    memcpy (m, d, len);
    m[14] = 0;
    m[15] = 1;
    m[16] = 0;
    m[17] = 1;
    parse_refused (m, len);
    parse_refused (d, 0);
    parse_refused (d, 1);
  }
  {
    /* a padded multi envelope with an empty body */
    guint8 hb[E2EE_ENVELOPE_V2_MULTI_HEAD + 16] = { 0x23, 2 };
    g_autoptr (GBytes) s0 = NULL, s1 = NULL, x = NULL;
    E2eeEnvelopeV2Slot *sl = env.slots;
    GBytes *slots[2];
    s0 = g_bytes_new (sl[0].message, sl[0].message_len);
    s1 = g_bytes_new (sl[1].message, sl[1].message_len);
    slots[0] = s0;
    slots[1] = s1;
    x = build_multi (hb, sizeof hb, slots, 2);
    parse_refused (g_bytes_get_data (x, NULL), g_bytes_get_size (x));
    hb[0] = 0x21;  /* unpadded: an empty body is a heartbeat, and parses */
    g_clear_pointer (&x, g_bytes_unref);
    x = build_multi (hb, sizeof hb, slots, 2);
    parse_ok (x, &env);
    open_env_fails (x, 0, &rb, E2EE_ERROR_V2_ENVELOPE);  /* not the sender's body */
  }
  {
    /* slots that authenticate but carry the wrong size, a wrong hash, or a
     * body the hash names but that does not open */
    guint8 zeros[64] = { 0 };
    g_autoptr (GBytes) bob_pt = slot_plaintext (good, 0, rb);
    g_autoptr (GBytes) ok1 = NULL, small = NULL, nohash = NULL, x = NULL, y = NULL, z = NULL;
    g_autoptr (GBytes) rehash = NULL;
    guint8 pt[64];
    GBytes *slots[2];
    gcry_buffer_t iov[2] = { { 0 } };

    parse_ok (good, &env);
    ok1 = g_bytes_new (env.slots[1].message, env.slots[1].message_len);
    small = e2ee_ratchet_seal (as[0], (const guint8 *) "short", 5, NULL);
    slots[0] = small;
    slots[1] = ok1;
    x = build_multi (d, head_len, slots, 2);
    parse_refused (g_bytes_get_data (x, NULL), g_bytes_get_size (x));
    nohash = e2ee_ratchet_seal (as[0], zeros, sizeof zeros, NULL);
    slots[0] = nohash;
    y = build_multi (d, head_len, slots, 2);
    open_env_fails (y, 0, &rb, E2EE_ERROR_V2_ENVELOPE);
    /* Alice herself names a broken body: the hash matches, GCM refuses. */
    memcpy (m, d, head_len);
    m[E2EE_ENVELOPE_V2_MULTI_HEAD] ^= 1;
    memcpy (pt, g_bytes_get_data (bob_pt, NULL), 32);
    iov[0].data = (void *) "PE2E v2 body hash";
    iov[0].len = 17;
    iov[1].data = m;
    iov[1].len = head_len;
    g_assert_cmpint (gcry_md_hash_buffers (GCRY_MD_SHA256, 0, pt + 32, iov, 2), ==, 0);
    rehash = e2ee_ratchet_seal (as[0], pt, sizeof pt, NULL);
    slots[0] = rehash;
    z = build_multi (m, head_len, slots, 2);
    open_env_fails (z, 0, &rb, E2EE_ERROR_V2_ENVELOPE);
    e2ee_wipe (pt, sizeof pt);
    /* a slot's sender tag changed */
    memcpy (m, d, len);
    m[len - env.slots[1].message_len + 3] ^= 1;
    parse_refused (m, len);
    /* and the real one still opens, for both */
    open_env_ok (good, 0, &rb, "good");
    open_env_ok (good, 1, &rc, "good");
  }
  for (int i = 0; i < 2; i++)
    e2ee_ratchet_free (as[i]);
  e2ee_ratchet_free (rb);
  e2ee_ratchet_free (rc);
  dev_clear (&a);
  dev_clear (&b);
  dev_clear (&c);
  e2ee_test_rng_off ();
}

/* ---- the vector ---------------------------------------------------------- */

static char *
hex_of (GBytes *b)
{
  return e2ee_test_hex (g_bytes_get_data (b, NULL), g_bytes_get_size (b));
}

static JsonObject *
recipient_json (const char *name, const Dev *d)
{
  JsonObject *o = json_object_new ();
  char *jwk = e2ee_key_to_jwk (d->ik, TRUE, FALSE);
  guint8 spk[32];
  g_autofree char *spk_hex = NULL;

  g_assert_true (e2ee_ec_secret_to_bytes (d->spk, spk));
  spk_hex = e2ee_test_hex (spk, sizeof spk);
  e2ee_wipe (spk, sizeof spk);
  json_object_set_string_member (o, "name", name);
  json_object_set_string_member (o, "identity_jwk", jwk);
  json_object_set_string_member (o, "account", d->account);
  json_object_set_int_member (o, "device", d->tag);
  json_object_set_int_member (o, "prekey_id", 9);
  json_object_set_string_member (o, "prekey_d", spk_hex);
  e2ee_string_free (jwk);
  return o;
}

/* Records an envelope and who opens which slot (each opening checked). */
static void
vector_envelope (JsonArray *arr, GBytes *e, const char *from, const char *text, gsize pad,
                 const char **names, E2eeRatchet ***sessions, guint n_open, GBytes *mk)
{
  JsonObject *o = json_object_new ();
  JsonArray *opens = json_array_new ();
  g_autofree char *wire = hex_of (e);
  E2eeEnvelopeV2 env;

  parse_ok (e, &env);
  json_object_set_string_member (o, "from", from);
  json_object_set_string_member (o, "layout", env.multi ? "multi" : "single");
  json_object_set_int_member (o, "pad_block", (gint64) pad);
  json_object_set_string_member (o, "plaintext", text);
  json_object_set_string_member (o, "wire", wire);
  if (mk)
    {
      g_autofree char *h = e2ee_test_hex (g_bytes_get_data (mk, NULL), 32);
      g_autofree char *hh = e2ee_test_hex ((const guint8 *) g_bytes_get_data (mk, NULL) + 32, 32);
      json_object_set_string_member (o, "body_key", h);
      json_object_set_string_member (o, "body_hash", hh);
    }
  for (guint i = 0; i < n_open; i++)
    {
      JsonObject *w = json_object_new ();
      json_object_set_string_member (w, "recipient", names[i]);
      json_object_set_int_member (w, "slot", i);
      json_array_add_object_element (opens, w);
      open_env_ok (e, i, sessions[i], text);
    }
  json_object_set_array_member (o, "opened_by", opens);
  json_array_add_object_element (arr, o);
}

static void
test_vector (void)
{
  Dev a, b, ph;
  E2eeRatchet *ab, *aph, *rb = NULL, *rph = NULL;
  g_autoptr (GBytes) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, mk2 = NULL, mk3 = NULL;
  g_autoptr (GBytes) sb = NULL, sph = NULL, sa = NULL;
  JsonObject *o = json_object_new ();
  JsonArray *recips = json_array_new (), *envs = json_array_new ();
  E2eeEnvelopeV2 env;
  char *ja;
  g_autofree char *hb = NULL, *hph = NULL, *ha = NULL;
  const char *t1 = "single: hello Bob", *t2 = "multi: to Bob and my phone \xc3\xbc\xe2\x82\xac";
  const char *t3 = "multi, unpadded", *t4 = "reply from Bob";

  dev_init (&a, "envelope vector alice", ALICE, 0x100);
  dev_init (&b, "envelope vector bob", BOB, 0x200);
  dev_init (&ph, "envelope vector alice phone", ALICE, 0x101);
  e2ee_test_rng_seed ("envelope vector run");
  ab = initiate (&a, &b);
  aph = initiate (&a, &ph);
  {
    E2eeRatchet *both[2] = { ab, aph };
    e1 = seal_env (&ab, 1, t1, 32);
    e2 = seal_env (both, 2, t2, 32);
    e3 = seal_env (both, 2, t3, 0);
  }
  parse_ok (e1, &env);
  rb = respond (&b, &a, &env.slots[0]);
  parse_ok (e2, &env);
  rph = respond (&ph, &a, &env.slots[1]);
  mk2 = slot_plaintext (e2, 1, rph);
  {
    const char *bob[] = { "bob" }, *both[] = { "bob", "alice phone" };
    E2eeRatchet **sb1[] = { &rb }, **sboth[] = { &rb, &rph };
    vector_envelope (envs, e1, "alice", t1, 32, bob, sb1, 1, NULL);
    vector_envelope (envs, e2, "alice", t2, 32, both, sboth, 2, mk2);
    mk3 = slot_plaintext (e3, 0, rb);
    vector_envelope (envs, e3, "alice", t3, 0, both, sboth, 2, mk3);
    /* Bob's first reply: a ratchet step, drawn from the same stream. */
    e4 = seal_env (&rb, 1, t4, 0);
    {
      const char *alice[] = { "alice" };
      E2eeRatchet **sa1[] = { &ab };
      vector_envelope (envs, e4, "bob", t4, 0, alice, sa1, 1, NULL);
    }
  }
  sb = blob_of (rb);
  sph = blob_of (rph);
  sa = blob_of (ab);
  hb = hex_of (sb);
  hph = hex_of (sph);
  ha = hex_of (sa);
  ja = e2ee_key_to_jwk (a.ik, TRUE, FALSE);
  json_object_set_string_member (o, "description",
    "v2 envelopes (single and multi, padded and not) over prekey sessions started by "
    "Alice to Bob and to her own phone; each recipient builds its session from the first "
    "slot for it (a start message) and opens every slot listed. Randomness: the test "
    "generator of tests/e2ee-test-rng.h seeded with SHA-256(\"envelope vector run\"), "
    "drawn in this order: Alice's two ephemeral keys, then per envelope the padding byte, "
    "MK and IV (multi), and each slot's ratchet draws. body_key/body_hash: a multi "
    "slot's plaintext.");
  json_object_set_string_member (o, "alice_identity_jwk", ja);
  json_object_set_string_member (o, "alice_account", ALICE);
  json_object_set_int_member (o, "alice_device", a.tag);
  json_array_add_object_element (recips, recipient_json ("bob", &b));
  json_array_add_object_element (recips, recipient_json ("alice phone", &ph));
  json_object_set_array_member (o, "recipients", recips);
  json_object_set_array_member (o, "envelopes", envs);
  json_object_set_string_member (o, "alice_state_end", ha);
  json_object_set_string_member (o, "bob_state_end", hb);
  json_object_set_string_member (o, "alice_phone_state_end", hph);
  e2ee_string_free (ja);
  e2ee_test_vector_check ("v2-envelope.json", o);
  e2ee_ratchet_free (ab);
  e2ee_ratchet_free (aph);
  e2ee_ratchet_free (rb);
  e2ee_ratchet_free (rph);
  dev_clear (&a);
  dev_clear (&b);
  dev_clear (&ph);
  e2ee_test_rng_off ();
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/envelope-v2/single", test_single);
  g_test_add_func ("/envelope-v2/multi", test_multi);
  g_test_add_func ("/envelope-v2/padding", test_padding);
  g_test_add_func ("/envelope-v2/forged-body", test_forged_body);
  g_test_add_func ("/envelope-v2/tamper", test_tamper);
  g_test_add_func ("/envelope-v2/collision", test_collision);
  g_test_add_func ("/envelope-v2/limits", test_limits);
  g_test_add_func ("/envelope-v2/vector", test_vector);
  return g_test_run ();
}
