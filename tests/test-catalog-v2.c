/* The bad-input catalog for protocol v2 envelopes: real envelopes Alice's
 * two devices send Bob (A1: multi, one slot for Bob and one for her own
 * A2; A2: single), each broken in one place and fed through
 * e2ee_context_receive() at Bob, with the exact error it must give.  Every
 * case must also leave Bob's keyring database byte for byte as it was
 * (compared after a save before and after), hand out no plaintext, and a
 * genuine message from each of Alice's devices must open afterwards.
 * Ratchet header faults are also fed to the ratchet message parser
 * itself.  (Armor, fragments, offers: test-catalog.c.)
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <glib/gstdio.h>
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-session.h"
#include "e2ee-test-util.h"
#include "e2ee-test-rng.h"
#include "e2ee-wipe.h"

const char *__lsan_default_suppressions (void);
const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

/* Every plaintext sealed here contains this: a leak into an error is caught. */
#define SECRET "SECRET-7f3a"
#define ALICE "alice@example.test"
#define BOB "bob@example.test"
#define MALLORY "mallory@example.test"
#define PROTO "prpl-jabber"
/* Expected outcome "dropped silently": E2EE_RECV_PENDING without an error. */
#define DROPPED (-1)
/* Offsets in a ratchet message (e2ee-ratchet-wire.h). */
#define O_SENDER 3
#define O_RCPT 7
#define O_DH 11
#define O_PN 76
#define O_N 80
#define O_MODE 84
#define O_IK 85
#define O_SPK 150
#define O_VERSIONS 154
#define MSG_MIN (E2EE_V2_FIXED_LEN + E2EE_AEAD_IV_LEN + E2EE_AEAD_TAG_LEN)

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
} Dev;

static struct {
  char *dir;
  Dev a1, a2, bob;
  gint64 clock;             /* every context's clock: held still */
  gint64 frag_now;          /* the receive calls' fragment clock */
  GBytes *m_start[2];       /* A1's first two envelopes: [0] delivered, [1] held back */
  GBytes *s_start[2];       /* the same from A2 */
  guint32 tag_bob, tag_a1, tag_a2, tag_own;
  gsize slot_off, slot_len; /* where the last builder's edited slot is */
} fx;

typedef enum { K_RECEIVE, K_PARSE, K_RATCHET } Kind;
typedef enum { S_SINGLE, S_MULTI, S_START, S_MSTART, S_PADDED } Src;
typedef struct _Case Case;
typedef GBytes *(*BuildFunc) (const Case *c);

struct _Case {
  const char *name;
  Kind kind;
  BuildFunc build;          /* returns the binary envelope */
  Src src;
  gssize arg;
  guint32 val;
  gint code;                /* expected E2EE_ERROR code, or DROPPED */
  gint given;               /* what the session layer gives today instead, or 0 */
  const char *from;         /* default Alice */
  const char *says;         /* the error message must contain this */
};

static guint32
tag_of (const E2eeKey *key)
{
  const guint8 *id = e2ee_key_get_device_id (key);
  return (guint32) id[0] << 24 | (guint32) id[1] << 16 | (guint32) id[2] << 8 | id[3];
}

static void
put_u32 (guint8 *p, guint32 v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (guint8) (v >> (24 - 8 * i));
}

static guint32
get_u32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static void
receive (Dev *to, const char *from, const char *text, E2eeRecvResult *r)
{
  e2ee_context_receive (to->ctx, to->account, from, text, fx.frag_now++, r);
}

/* The armored text of @raw (consumed). */
static GBytes *
armored (GBytes *raw)
{
  char *s = e2ee_armor_encode (raw);

  g_bytes_unref (raw);
  return g_bytes_new_take (s, strlen (s));
}

/* A fresh envelope from @from to Bob (binary). */
static GBytes *
send_raw (Dev *from, const char *text)
{
  g_autoptr (GError) error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, BOB, text, 0, &error);
  GBytes *raw;

  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (pieces), ==, 1);
  raw = e2ee_armor_decode (pieces[0], &error);
  g_assert_no_error (error);
  g_strfreev (pieces);
  return raw;
}

/* Delivers @raw to Bob from Alice and asserts it shows @text. */
static void
deliver_ok (GBytes *raw, const char *text)
{
  g_autoptr (GBytes) a = armored (g_bytes_ref (raw));
  E2eeRecvResult r;

  receive (&fx.bob, ALICE, g_bytes_get_data (a, NULL), &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, text);
  e2ee_recv_result_clear (&r);
}

static void
genuine_opens (Dev *from, const char *label)
{
  g_autofree char *text = g_strdup_printf ("%s " SECRET, label);
  g_autoptr (GBytes) raw = send_raw (from, text);
  deliver_ok (raw, text);
}

/* Bob's keyring database as it is on disk after a save. */
static GBytes *
bob_snapshot (void)
{
  g_autoptr (GError) error = NULL;
  GByteArray *all = g_byte_array_new ();
  static const char *const names[] = { "bob.sqlite", "bob.sqlite-wal" };

  g_assert_true (e2ee_keyring_save (e2ee_context_get_keyring (fx.bob.ctx), &error));
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (fx.dir, names[i], NULL);
      g_autofree char *data = NULL;
      gsize len = 0;

      if (g_file_get_contents (path, &data, &len, NULL))
        g_byte_array_append (all, (const guint8 *) data, (guint) len);
      else
        g_assert_cmpuint (i, ==, 1);  /* no -wal file is fine */
    }
  return g_byte_array_free_to_bytes (all);
}

/* ------------------------------------------------------------------ */
/* Input builders */

static GBytes *
source (Src s)
{
  switch (s)
    {
    case S_SINGLE: return send_raw (&fx.a2, "single " SECRET);
    case S_MULTI: return send_raw (&fx.a1, "multi " SECRET);
    case S_START: return g_bytes_ref (fx.s_start[1]);
    case S_MSTART: return g_bytes_ref (fx.m_start[1]);
    case S_PADDED:
      {
        GBytes *raw;

        e2ee_context_set_padding (fx.a2.ctx, 16);
        raw = send_raw (&fx.a2, "padded " SECRET);
        e2ee_context_set_padding (fx.a2.ctx, 0);
        g_assert_cmpuint (((const guint8 *) g_bytes_get_data (raw, NULL))[0], ==, 0x22);
        return raw;
      }
    }
  g_assert_not_reached ();
}

/* Bob's ratchet message in @raw: offset and length (recorded in fx too). */
static gsize
bob_slot (GBytes *raw)
{
  E2eeEnvelopeV2 env;
  g_autoptr (GError) error = NULL;
  const guint8 *d = g_bytes_get_data (raw, NULL);

  g_assert_true (e2ee_envelope_v2_parse (d, g_bytes_get_size (raw), &env, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < env.n_slots; i++)
    if (env.slots[i].recipient_device == fx.tag_bob)
      {
        fx.slot_off = (gsize) (env.slots[i].message - d);
        fx.slot_len = env.slots[i].message_len;
        return fx.slot_off;
      }
  g_assert_not_reached ();
}

static guint8 *
data_of (GBytes *raw, gsize *len)
{
  return g_bytes_unref_to_data (raw, len);
}

static GBytes *b_v1 (const Case *c)
{
  /* A real version 1 envelope (what an old sender still sends). */
  guint8 key[E2EE_KEY_LEN];
  E2eeRecipient rcpt = { { 0 }, key, NULL };
  E2eeSealParams p = { 0 };

  memset (key, 0x33, sizeof key);
  memcpy (rcpt.id, e2ee_key_get_device_id (fx.bob.account->identity), E2EE_DEVICE_ID_LEN);
  p.caps = E2EE_CAPS_V1;
  memcpy (p.sender_id, e2ee_key_get_device_id (fx.a1.account->identity), E2EE_DEVICE_ID_LEN);
  p.counter = 1;
  p.recipients = &rcpt;
  p.n_recipients = 1;
  return e2ee_envelope_seal (&p, (const guint8 *) "old " SECRET, 15, NULL);
}

/* Byte @at set to @val, or XORed with its low byte when @val has XOR. */
#define XOR 0x100u
static void
edit (guint8 *at, guint32 val)
{
  *at = (val & XOR) ? (guint8) (*at ^ val) : (guint8) val;
}

/* Byte @arg of the envelope (arg < 0: from the end) edited by @val. */
static GBytes *
b_byte (const Case *c)
{
  gsize len;
  guint8 *d = data_of (source (c->src), &len);

  edit (&d[c->arg < 0 ? (gssize) len + c->arg : c->arg], c->val);
  return g_bytes_new_take (d, len);
}

/* The first @arg bytes (arg < 0: all but -arg). */
static GBytes *
b_cut (const Case *c)
{
  gsize len;
  guint8 *d = data_of (source (c->src), &len);

  return g_bytes_new_take (d, c->arg < 0 ? len + c->arg : (gsize) c->arg);
}

/* Multi cut at field boundary @arg: 0 after byte 0, 1 n, 2 IV, 3 L, 4 body
 * ciphertext, 5 body tag, 6 half the first slot length, 7 the first
 * slot length, 8 the first slot's header, 9 the first slot, 10 the second
 * slot length, 11 all but one byte. */
static GBytes *
b_multi_cut (const Case *c)
{
  gsize len;
  guint8 *d = data_of (source (S_MULTI), &len);
  gsize body_end = E2EE_ENVELOPE_V2_MULTI_HEAD + get_u32 (d + 14) + E2EE_AEAD_TAG_LEN;
  gsize slot1 = body_end + 2 + ((gsize) d[body_end] << 8 | d[body_end + 1]);
  gsize at[] = { 1, 2, 14, 18, body_end - 16, body_end, body_end + 1, body_end + 2,
                 body_end + 2 + E2EE_V2_FIXED_LEN, slot1, slot1 + 2, len - 1 };

  g_assert_cmpint (c->arg, <, (gssize) G_N_ELEMENTS (at));
  return g_bytes_new_take (d, at[c->arg]);
}

static GBytes *
b_append (const Case *c)
{
  gsize len;
  guint8 *d = data_of (source (c->src), &len);

  d = g_realloc (d, len + 1);
  d[len] = 0;
  return g_bytes_new_take (d, len + 1);
}

/* A multi's length field: @arg -1 body L + (gint32) @val, -2 body L =
 * @val, 0/1 slot 0/1 length + (gint32) @val, 2 slot 0 length = @val. */
static GBytes *
b_length (const Case *c)
{
  gsize len, off;
  guint8 *d = data_of (source (S_MULTI), &len);
  gsize body_end = E2EE_ENVELOPE_V2_MULTI_HEAD + get_u32 (d + 14) + E2EE_AEAD_TAG_LEN;

  if (c->arg < 0)
    {
      put_u32 (d + 14, c->arg == -2 ? c->val : get_u32 (d + 14) + c->val);
      return g_bytes_new_take (d, len);
    }
  off = body_end;
  if (c->arg == 1)
    off += 2 + ((gsize) d[off] << 8 | d[off + 1]);
  {
    guint v = c->arg == 2 ? c->val : ((guint) d[off] << 8 | d[off + 1]) + c->val;
    d[off] = (guint8) (v >> 8);
    d[off + 1] = (guint8) v;
  }
  return g_bytes_new_take (d, len);
}

/* The known tag for @v: 1 A1, 2 A2, 3 Bob's other (pending) device, 4 Bob;
 * else @v itself. */
static guint32
tag_value (guint32 v)
{
  switch (v)
    {
    case 1: return fx.tag_a1;
    case 2: return fx.tag_a2;
    case 3: return fx.tag_own;
    case 4: return fx.tag_bob;
    default: return v;
    }
}

/* In Bob's slot, byte @arg (< 0: from the slot's end) edited by @val. */
static GBytes *
b_slot_byte (const Case *c)
{
  GBytes *raw = source (c->src);
  gsize off = bob_slot (raw), len;
  guint8 *d = data_of (raw, &len);

  edit (&d[off + (c->arg < 0 ? (gssize) fx.slot_len + c->arg : c->arg)], c->val);
  return g_bytes_new_take (d, len);
}

/* In Bob's slot, the u32 at @arg set to tag_value (@val); for a tag, in
 * every slot when the name says "every-slot". */
static GBytes *
b_slot_u32 (const Case *c)
{
  GBytes *raw = source (c->src);
  gsize off = bob_slot (raw), len;
  guint8 *d = data_of (raw, &len);
  E2eeEnvelopeV2 env;

  if (strstr (c->name, "every-slot") != NULL)
    {
      g_assert_true (e2ee_envelope_v2_parse (d, len, &env, NULL));
      for (guint i = 0; i < env.n_slots; i++)
        put_u32 ((guint8 *) env.slots[i].message + c->arg, tag_value (c->val));
    }
  else
    put_u32 (d + off + c->arg, tag_value (c->val));
  return g_bytes_new_take (d, len);
}

/* N in Bob's slot moved @arg ahead; Bob is first brought to the message
 * before it, so the skip is exactly @arg. */
static GBytes *
b_n_ahead (const Case *c)
{
  GBytes *raw;
  gsize off, len;
  guint8 *d;

  genuine_opens (c->src == S_MULTI ? &fx.a1 : &fx.a2, "just before");
  raw = source (c->src);
  off = bob_slot (raw);
  d = data_of (raw, &len);
  put_u32 (d + off + O_N, get_u32 (d + off + O_N) + (guint32) c->arg);
  return g_bytes_new_take (d, len);
}

/* 65 bytes at @arg of Bob's slot: A1's identity point (val 1) or zeros. */
static GBytes *
b_slot_point (const Case *c)
{
  GBytes *raw = source (c->src);
  gsize off = bob_slot (raw), len;
  guint8 *d = data_of (raw, &len);
  const E2eeKey *k = fx.a1.account->identity;

  memset (d + off + c->arg, 0, E2EE_EC_POINT_LEN);
  if (c->val == 1)
    {
      d[off + c->arg] = 0x04;
      memcpy (d + off + c->arg + 1, e2ee_key_get_x (k), 32);
      memcpy (d + off + c->arg + 33, e2ee_key_get_y (k), 32);
    }
  return g_bytes_new_take (d, len);
}

/* A2's single with a ciphertext of @arg bytes (its tag no longer fits). */
static GBytes *
b_big (const Case *c)
{
  gsize len, hl = 1 + E2EE_V2_FIXED_LEN + E2EE_AEAD_IV_LEN;
  guint8 *d = data_of (source (S_SINGLE), &len);
  gsize total = hl + (gsize) c->arg + E2EE_AEAD_TAG_LEN;

  d = g_realloc (d, total);
  memset (d + hl, 0x5a, total - hl);
  fx.slot_off = 1;
  fx.slot_len = total - 1;
  return g_bytes_new_take (d, total);
}

/* Records the 32-byte key draws of one seal (the body key among them). */
static GPtrArray *draws;

static void
record_draw (guint8 *out, gsize len, E2eeRandomKind kind, gpointer data)
{
  gcry_randomize (out, len, GCRY_STRONG_RANDOM);
  if (kind == E2EE_RANDOM_KEY && len == E2EE_AEAD_KEY_LEN)
    g_ptr_array_add (draws, g_memdup2 (out, len));
}

/* A2 knows the body key of A1's envelope and seals a body of its own
 * under it (a valid GCM tag under that key): Bob's slot carries the hash
 * of A1's body, so Bob must refuse it. */
static GBytes *
b_co_recipient (const Case *c)
{
  static const char forged[] = "FORGED " SECRET;
  g_autoptr (GBytes) raw = NULL;
  gsize len, old_end, flen = sizeof forged - 1;
  const guint8 *d;
  guint8 *out, aad[2 + sizeof E2EE_ENVELOPE_V2_BODY_LABEL - 1];
  gboolean found = FALSE;

  draws = g_ptr_array_new_with_free_func (g_free);
  e2ee_test_random_override.hook = record_draw;
  raw = source (S_MULTI);
  e2ee_test_random_override.hook = NULL;
  d = g_bytes_get_data (raw, &len);
  old_end = E2EE_ENVELOPE_V2_MULTI_HEAD + get_u32 (d + 14) + E2EE_AEAD_TAG_LEN;
  out = g_malloc (len - old_end + E2EE_ENVELOPE_V2_MULTI_HEAD + flen + E2EE_AEAD_TAG_LEN);
  memcpy (out, d, E2EE_ENVELOPE_V2_MULTI_HEAD);
  put_u32 (out + 14, (guint32) flen);
  memcpy (aad, d, 2);
  memcpy (aad + 2, E2EE_ENVELOPE_V2_BODY_LABEL, sizeof aad - 2);
  for (guint i = 0; i < draws->len && !found; i++)
    {
      g_autoptr (E2eeAead) aead = e2ee_aead_new (draws->pdata[i], NULL);
      guint8 pt[64];

      /* The draw that opens A1's body is the body key. */
      if (old_end - E2EE_ENVELOPE_V2_MULTI_HEAD - 16 > sizeof pt
          || !e2ee_aead_open (aead, d + 2, aad, sizeof aad, d + E2EE_ENVELOPE_V2_MULTI_HEAD,
                              old_end - E2EE_ENVELOPE_V2_MULTI_HEAD - 16, d + old_end - 16, pt,
                              NULL))
        continue;
      found = e2ee_aead_seal (aead, out + 2, aad, sizeof aad, (const guint8 *) forged, flen,
                              out + E2EE_ENVELOPE_V2_MULTI_HEAD,
                              out + E2EE_ENVELOPE_V2_MULTI_HEAD + flen, NULL);
    }
  g_clear_pointer (&draws, g_ptr_array_unref);
  g_assert_true (found);
  memcpy (out + E2EE_ENVELOPE_V2_MULTI_HEAD + flen + 16, d + old_end, len - old_end);
  return g_bytes_new_take (out, len - old_end + E2EE_ENVELOPE_V2_MULTI_HEAD + flen + 16);
}

/* A genuine envelope, delivered once here. */
static GBytes *
b_duplicate (const Case *c)
{
  GBytes *raw = source (c->src);

  deliver_ok (raw, c->src == S_MULTI ? "multi " SECRET : "single " SECRET);
  return raw;
}

static GBytes *
b_first (const Case *c)
{
  return g_bytes_ref (c->src == S_MULTI ? fx.m_start[0] : fx.s_start[0]);
}
static GBytes *b_empty (const Case *c) { return g_bytes_new (NULL, 0); }
static GBytes *b_genuine (const Case *c) { return source (c->src); }

static GBytes *
b_body_tag (const Case *c)
{
  gsize len;
  guint8 *d = data_of (source (S_MULTI), &len);

  d[E2EE_ENVELOPE_V2_MULTI_HEAD + get_u32 (d + 14) + E2EE_AEAD_TAG_LEN - 1] ^= 0x01;
  return g_bytes_new_take (d, len);
}

/* A mode-1 start turned into mode 2 (no prekey), prekey id 0: parses. */
static GBytes *
b_mode2 (const Case *c)
{
  GBytes *raw = source (c->src);
  gsize off = bob_slot (raw), len;
  guint8 *d = data_of (raw, &len);

  d[off + O_MODE] = 2;
  put_u32 (d + off + O_SPK, 0);
  return g_bytes_new_take (d, len);
}

/* ------------------------------------------------------------------ */
/* The catalog */

#define E(code) E2EE_ERROR_##code
#define R(n, b, s, a, v, code) { n, K_RECEIVE, b, s, a, v, code, 0, NULL, NULL }
/* Expected @code; the session layer gives @given today (see its comment). */
#define RG(n, b, s, a, v, code, given) { n, K_RECEIVE, b, s, a, v, code, given, NULL, NULL }
#define P(n, b, code) { n, K_PARSE, b, S_SINGLE, 0, 0, code, 0, NULL, NULL }
/* A ratchet header fault: refused by the envelope parser in the receive
 * path, and by the ratchet message parser itself. */
#define HF(n, b, s, a, v) \
  R ("slot/" n, b, s, a, v, E (V2_ENVELOPE)), \
  { "ratchet/" n, K_RATCHET, b, s, a, v, E (V2_FORMAT), 0, NULL, NULL }
#define CUT(n, s, a) R (n, b_cut, s, a, 0, E (V2_ENVELOPE))
#define MCUT(n, a) R ("multi/cut-after-" n, b_multi_cut, S_MULTI, a, 0, E (V2_ENVELOPE))
#define UNKNOWN_TAG 0xdeadbeefu
#define ELSEWHERE 0x01020304u

/* Cases whose most telling error (the skip bound, a body that is not the
 * sender's, bad padding, a duplicate another session failed on) must win
 * over a plain tag failure of another session: no fallback code. */
#define ALTERED 0

static const Case cases[] = {
  /* Retired and unknown formats. */
  R ("v1/sealed-envelope", b_v1, S_SINGLE, 0, 0, E (V1_RETIRED)),
  R ("v1/version-nibble-on-v2-bytes", b_byte, S_SINGLE, 0, 0x11, E (V1_RETIRED)),
  R ("head/first-byte-00", b_byte, S_SINGLE, 0, 0x00, E (V2_ENVELOPE)),
  R ("head/first-byte-24", b_byte, S_SINGLE, 0, 0x24, E (V2_ENVELOPE)),
  R ("head/first-byte-30", b_byte, S_SINGLE, 0, 0x30, E (V2_ENVELOPE)),
  R ("head/first-byte-ff", b_byte, S_SINGLE, 0, 0xff, E (V2_ENVELOPE)),
  R ("head/single-read-as-multi", b_byte, S_SINGLE, 0, 0x21, E (V2_ENVELOPE)),
  R ("head/multi-read-as-single", b_byte, S_MULTI, 0, 0x20, E (V2_ENVELOPE)),
  R ("head/empty", b_empty, S_SINGLE, 0, 0, E (V2_ENVELOPE)),
  P ("parse/empty", b_empty, E (V2_ENVELOPE)),
  /* Truncations at every field boundary. */
  CUT ("single/cut-after-byte-0", S_SINGLE, 1),
  CUT ("single/cut-after-flags", S_SINGLE, 1 + 3),
  CUT ("single/cut-after-sender-tag", S_SINGLE, 1 + 7),
  CUT ("single/cut-after-recipient-tag", S_SINGLE, 1 + 11),
  CUT ("single/cut-after-ratchet-key", S_SINGLE, 1 + O_PN),
  CUT ("single/cut-after-pn", S_SINGLE, 1 + O_N),
  CUT ("single/cut-after-n", S_SINGLE, 1 + E2EE_V2_FIXED_LEN),
  CUT ("single/cut-after-iv", S_SINGLE, 1 + E2EE_V2_FIXED_LEN + E2EE_AEAD_IV_LEN),
  CUT ("single/one-byte-below-minimum", S_SINGLE, MSG_MIN),
  CUT ("start/cut-after-n", S_START, 1 + O_MODE),
  CUT ("start/cut-after-mode", S_START, 1 + O_IK),
  CUT ("start/cut-after-identity", S_START, 1 + O_SPK),
  CUT ("start/cut-after-prekey-id", S_START, 1 + O_VERSIONS),
  CUT ("start/cut-after-versions", S_START, 1 + O_VERSIONS + 1),
  CUT ("start/cut-after-iv", S_START, 1 + O_VERSIONS + 1 + E2EE_AEAD_IV_LEN),
  CUT ("start/one-byte-below-minimum", S_START, MSG_MIN + E2EE_V2_START_LEN),
  /* A single's ciphertext has no length field: its end is the tag's. */
  R ("single/cut-last-byte", b_cut, S_SINGLE, -1, 0, E (AEAD_TAG)),
  R ("single/trailing-byte", b_append, S_SINGLE, 0, 0, E (AEAD_TAG)),
  MCUT ("byte-0", 0), MCUT ("n", 1), MCUT ("iv", 2), MCUT ("body-length", 3),
  MCUT ("body-ciphertext", 4), MCUT ("body-tag", 5), MCUT ("half-slot-length", 6),
  MCUT ("slot-length", 7), MCUT ("slot-header", 8), MCUT ("first-slot", 9),
  MCUT ("second-slot-length", 10), MCUT ("all-but-last-byte", 11),
  /* Counts and lengths of the multi layout. */
  R ("multi/n-0", b_byte, S_MULTI, 1, 0, E (V2_ENVELOPE)),
  R ("multi/n-1", b_byte, S_MULTI, 1, 1, E (V2_ENVELOPE)),
  R ("multi/n-3-with-2-slots", b_byte, S_MULTI, 1, 3, E (V2_ENVELOPE)),
  R ("multi/n-33", b_byte, S_MULTI, 1, 33, E (V2_ENVELOPE)),
  R ("multi/body-length-plus-1", b_length, S_MULTI, -1, 1, E (V2_ENVELOPE)),
  R ("multi/body-length-minus-1", b_length, S_MULTI, -1, (guint32) -1, E (V2_ENVELOPE)),
  R ("multi/body-length-past-end", b_length, S_MULTI, -1, 1000, E (V2_ENVELOPE)),
  R ("multi/body-length-65537", b_length, S_MULTI, -2, 65537, E (V2_ENVELOPE)),
  R ("multi/body-length-max", b_length, S_MULTI, -2, 0xffffffff, E (V2_ENVELOPE)),
  R ("multi/slot-length-plus-1", b_length, S_MULTI, 0, 1, E (V2_ENVELOPE)),
  R ("multi/slot-length-minus-1", b_length, S_MULTI, 0, (guint32) -1, E (V2_ENVELOPE)),
  R ("multi/last-slot-length-plus-1", b_length, S_MULTI, 1, 1, E (V2_ENVELOPE)),
  R ("multi/slot-length-ffff", b_length, S_MULTI, 2, 0xffff, E (V2_ENVELOPE)),
  R ("multi/slot-length-0", b_length, S_MULTI, 2, 0, E (V2_ENVELOPE)),
  R ("multi/trailing-byte", b_append, S_MULTI, 0, 0, E (V2_ENVELOPE)),
  /* Ratchet header faults inside a slot. */
  HF ("version-1", b_slot_byte, S_MULTI, 0, 1),
  HF ("version-3", b_slot_byte, S_MULTI, 0, 3),
  HF ("single-version-3", b_slot_byte, S_SINGLE, 0, 3),
  HF ("type-0", b_slot_byte, S_MULTI, 1, 0),
  HF ("type-3", b_slot_byte, S_MULTI, 1, 3),
  HF ("flags-1", b_slot_byte, S_MULTI, 2, 1),
  HF ("flags-80", b_slot_byte, S_SINGLE, 2, 0x80),
  HF ("ratchet-key-compressed", b_slot_byte, S_MULTI, O_DH, 0x02),
  HF ("ratchet-key-off-curve", b_slot_byte, S_SINGLE, O_DH + 64, XOR | 0x01),
  HF ("ratchet-key-zero", b_slot_point, S_MULTI, O_DH, 0),
  HF ("start-mode-0", b_slot_byte, S_START, O_MODE, 0),
  HF ("start-mode-3", b_slot_byte, S_START, O_MODE, 3),
  HF ("start-mode-2-with-prekey-id", b_slot_byte, S_START, O_MODE, 2),
  HF ("multi-start-mode-2-with-prekey-id", b_slot_byte, S_MSTART, O_MODE, 2),
  HF ("start-versions-without-2", b_slot_byte, S_START, O_VERSIONS, 0x01),
  HF ("start-versions-0", b_slot_byte, S_MSTART, O_VERSIONS, 0x00),
  HF ("start-identity-off-curve", b_slot_byte, S_START, O_IK + 64, XOR | 0x01),
  HF ("start-identity-zero", b_slot_point, S_START, O_IK, 0),
  HF ("ciphertext-65537", b_big, S_SINGLE, E2EE_V2_MAX_PLAINTEXT + 1, 0),
  R ("single/ciphertext-65536", b_big, S_SINGLE, E2EE_V2_MAX_PLAINTEXT, 0, E (AEAD_TAG)),
  /* Addressing. */
  R ("multi/slot-for-another-device", b_slot_u32, S_MULTI, O_RCPT, ELSEWHERE, E (NOT_FOR_US)),
  R ("multi/slot-for-the-co-recipient", b_slot_u32, S_MULTI, O_RCPT, 2, E (NOT_FOR_US)),
  R ("single/slot-for-another-device", b_slot_u32, S_SINGLE, O_RCPT, ELSEWHERE, E (NOT_FOR_US)),
  { "single/slot-for-own-other-device", K_RECEIVE, b_slot_u32, S_SINGLE, O_RCPT, 3,
    E (NOT_FOR_US), 0, NULL, "another device of this account" },
  R ("single/sender-tag-unknown", b_slot_u32, S_SINGLE, O_SENDER, UNKNOWN_TAG, E (V2_NO_SESSION)),
  R ("multi/sender-tag-unknown-every-slot", b_slot_u32, S_MULTI, O_SENDER, UNKNOWN_TAG,
     E (V2_NO_SESSION)),
  R ("multi/sender-tag-differs-between-slots", b_slot_u32, S_MULTI, O_SENDER, UNKNOWN_TAG,
     E (V2_ENVELOPE)),
  /* A1's sessions are tried: none opens it. */
  R ("single/sender-tag-of-other-device", b_slot_u32, S_SINGLE, O_SENDER, 1, E (AEAD_TAG)),
  /* A start whose named identity is not the device of its tag: no attempt. */
  R ("start/sender-tag-of-other-device", b_slot_u32, S_START, O_SENDER, 1, E (V2_NO_SESSION)),
  R ("start/identity-of-other-device", b_slot_point, S_START, O_IK, 1, E (V2_NO_SESSION)),
  { "sender/without-key", K_RECEIVE, b_genuine, S_SINGLE, 0, 0, E (UNKNOWN_SENDER), 0, MALLORY,
    NULL },
  /* Flipped bits in what the ratchet authenticates. */
  R ("single/tag-flipped", b_byte, S_SINGLE, -1, XOR | 0x80, E (AEAD_TAG)),
  R ("single/ciphertext-flipped", b_byte, S_SINGLE, -17, XOR | 0x01, E (AEAD_TAG)),
  R ("single/iv-flipped", b_byte, S_SINGLE, 1 + E2EE_V2_FIXED_LEN, XOR | 0x01, E (AEAD_TAG)),
  R ("single/pn-flipped", b_byte, S_SINGLE, 1 + O_PN + 3, XOR | 0x01, E (AEAD_TAG)),
  R ("single/ratchet-key-other-point", b_slot_point, S_SINGLE, O_DH, 1, E (AEAD_TAG)),
  R ("multi/slot-tag-flipped", b_slot_byte, S_MULTI, -1, XOR | 0x80, E (AEAD_TAG)),
  R ("multi/slot-ciphertext-flipped", b_slot_byte, S_MULTI, -17, XOR | 0x01, E (AEAD_TAG)),
  R ("multi/slot-iv-flipped", b_slot_byte, S_MULTI, E2EE_V2_FIXED_LEN, XOR | 0x01, E (AEAD_TAG)),
  R ("multi/slot-pn-flipped", b_slot_byte, S_MULTI, O_PN + 3, XOR | 0x01, E (AEAD_TAG)),
  R ("multi/slot-ratchet-key-other-point", b_slot_point, S_MULTI, O_DH, 1, E (AEAD_TAG)),
  R ("multi/n-1-ahead", b_n_ahead, S_MULTI, 1, 0, E (AEAD_TAG)),
  R ("start/tag-flipped", b_slot_byte, S_START, -1, XOR | 0x80, E (AEAD_TAG)),
  R ("start/mode-2-downgrade", b_mode2, S_START, 0, 0, E (AEAD_TAG)),
  /* The body of a multi: bound to every slot by the body hash. */
  RG ("multi/co-recipient-forged-body", b_co_recipient, S_MULTI, 0, 0, E (V2_ENVELOPE), ALTERED),
  RG ("multi/body-ciphertext-flipped", b_byte, S_MULTI, E2EE_ENVELOPE_V2_MULTI_HEAD, XOR | 0x01,
      E (V2_ENVELOPE), ALTERED),
  RG ("multi/body-tag-flipped", b_body_tag, S_MULTI, 0, 0, E (V2_ENVELOPE), ALTERED),
  RG ("multi/body-iv-flipped", b_byte, S_MULTI, 2, XOR | 0x01, E (V2_ENVELOPE), ALTERED),
  RG ("multi/padded-flag-flipped", b_byte, S_MULTI, 0, XOR | E2EE_ENVELOPE_V2_PADDED,
      E (V2_ENVELOPE), ALTERED),
  /* A single's byte 0 is outside the ratchet message: the padding check
   * catches the flag. */
  RG ("single/padded-flag-set", b_byte, S_SINGLE, 0, 0x22, E (ENVELOPE_TRAILING), ALTERED),
  /* ... and without the flag, the padding is text with a NUL in it. */
  RG ("single/padded-flag-cleared", b_byte, S_PADDED, 0, 0x20, E (ENVELOPE_TRAILING), ALTERED),
  /* The skip bound (1000 per chain): at it the keys are derived and the
   * tag decides; beyond it nothing is derived. */
  R ("multi/n-1000-ahead", b_n_ahead, S_MULTI, 1000, 0, E (AEAD_TAG)),
  RG ("multi/n-1001-ahead", b_n_ahead, S_MULTI, 1001, 0, E (V2_SKIP_LIMIT), ALTERED),
  RG ("single/n-1001-ahead", b_n_ahead, S_SINGLE, 1001, 0, E (V2_SKIP_LIMIT), ALTERED),
  RG ("single/n-max", b_slot_u32, S_SINGLE, O_N, 0xffffffffu, E (V2_SKIP_LIMIT), ALTERED),
  /* Duplicates and replayed starts: dropped without a word. */
  R ("multi/duplicate", b_duplicate, S_MULTI, 0, 0, DROPPED),
  RG ("single/duplicate", b_duplicate, S_SINGLE, 0, 0, DROPPED, ALTERED),
  R ("start/replayed-first-multi", b_first, S_MULTI, 0, 0, DROPPED),
  R ("start/replayed-first-single", b_first, S_SINGLE, 0, 0, DROPPED),
  R ("start/unknown-prekey-id", b_slot_u32, S_START, O_SPK, 0x7fffffffu, E (V2_START)),
  R ("start/unknown-prekey-id-multi", b_slot_u32, S_MSTART, O_SPK, 0x7fffffffu, E (V2_START)),
};

/* ------------------------------------------------------------------ */
/* Running one case */

static void
assert_no_secret (const GError *error)
{
  g_assert_nonnull (error);
  g_assert_null (strstr (error->message, SECRET));
  g_assert_null (strstr (error->message, "FORGED"));
}

static void
run_receive (const Case *c, GBytes *raw)
{
  g_autoptr (GBytes) wire = armored (g_bytes_ref (raw));
  g_autofree char *text = g_strndup (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire));
  const char *from = c->from ? c->from : ALICE;
  gboolean had_buddy = e2ee_account_lookup_buddy (fx.bob.account, from) != NULL;
  g_autoptr (GBytes) before = bob_snapshot ();
  g_autoptr (GBytes) after = NULL;
  gboolean as_expected;
  E2eeRecvResult r;

  receive (&fx.bob, from, text, &r);
  as_expected = c->code == DROPPED
                ? r.kind == E2EE_RECV_PENDING && r.error == NULL
                : r.kind == E2EE_RECV_ERROR && g_error_matches (r.error, E2EE_ERROR, c->code);
  if (!as_expected && c->given != 0)
    {
      g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
      g_assert_error (r.error, E2EE_ERROR, c->given);
      g_autofree char *why = g_strdup_printf ("the session layer gives E2EE_ERROR %d; the "
                                              "contract: %s", c->given, c->code == DROPPED
                                              ? "a silent drop" : "the session's own code");
      g_test_incomplete (why);
    }
  else if (c->code == DROPPED)
    {
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);
    }
  else
    {
      g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
      g_assert_error (r.error, E2EE_ERROR, c->code);
    }
  if (r.error != NULL)
    assert_no_secret (r.error);
  if (c->says != NULL)
    g_assert_nonnull (strstr (r.error->message, c->says));
  g_assert_null (r.plaintext);
  g_assert_null (r.reply);
  g_assert_null (r.new_devices);
  e2ee_recv_result_clear (&r);

  /* The keyring, as it is on disk, is exactly what it was... */
  after = bob_snapshot ();
  g_assert_true (g_bytes_equal (before, after));
  g_assert_true ((e2ee_account_lookup_buddy (fx.bob.account, from) != NULL) == had_buddy);
  /* ... and both of Alice's devices still get through. */
  genuine_opens (&fx.a1, "after (multi)");
  genuine_opens (&fx.a2, "after (single)");
}

static void
run_case (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GBytes) raw = c->build (c);
  g_autoptr (GError) error = NULL;
  const guint8 *d = g_bytes_get_data (raw, NULL);

  switch (c->kind)
    {
    case K_RECEIVE:
      run_receive (c, raw);
      return;
    case K_PARSE:
      {
        E2eeEnvelopeV2 env;
        g_assert_false (e2ee_envelope_v2_parse (d, g_bytes_get_size (raw), &env, &error));
        break;
      }
    case K_RATCHET:
      {
        E2eeV2Message msg;
        g_assert_cmpuint (fx.slot_off + fx.slot_len, <=, g_bytes_get_size (raw));
        g_assert_false (e2ee_v2_message_parse (d + fx.slot_off, fx.slot_len, &msg, &error));
        break;
      }
    }
  g_assert_error (error, E2EE_ERROR, c->code);
  assert_no_secret (error);
}

/* ------------------------------------------------------------------ */
/* The parties */

static gint64
read_clock (gpointer data)
{
  return *(const gint64 *) data;
}

static gboolean
commit_save (E2eeContext *ctx, gpointer data, GError **error)
{
  return e2ee_keyring_save (e2ee_context_get_keyring (ctx), error);
}

static void
dev_init (Dev *d, const char *path, const char *name)
{
  g_autoptr (GError) error = NULL;

  d->ctx = e2ee_context_new (e2ee_keyring_new (path));
  e2ee_context_set_clock (d->ctx, read_clock, &fx.clock);
  d->account = e2ee_context_ensure_account (d->ctx, PROTO, name, NULL, &error);
  g_assert_no_error (error);
}

static void
learn (Dev *to, const char *as, Dev *from, E2eeLearnResult want)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (from->ctx, from->account);
  g_assert_cmpint (e2ee_context_learn_keys (to->ctx, to->account, as, keys, NULL), ==, want);
}

/* Bob answers a failure on a session he has with a new start (sent back
 * at once as an empty message), then not again for that device for ten
 * minutes on his clock, which stands still here: this spends that answer
 * for @from, so every case below sees only the receive path.  Alice's
 * devices take the start in. */
static void
spend_heal (Dev *from, const Case *broken, gint code)
{
  g_autoptr (GBytes) raw = broken->build (broken);
  g_autoptr (GBytes) wire = armored (g_bytes_ref (raw));
  g_autofree char *reply = NULL;
  E2eeRecvResult r;

  receive (&fx.bob, ALICE, g_bytes_get_data (wire, NULL), &r);
  g_assert_error (r.error, E2EE_ERROR, code);
  assert_no_secret (r.error);
  g_assert_null (r.plaintext);
  g_assert_nonnull (r.reply);
  reply = g_steal_pointer (&r.reply);
  e2ee_recv_result_clear (&r);
  for (Dev *d = &fx.a1; d <= &fx.a2; d++)
    {
      receive (d, BOB, reply, &r);
      g_assert_no_error (r.error);
      g_assert_cmpint (r.kind, ==, E2EE_RECV_PENDING);   /* empty: shown as nothing */
      e2ee_recv_result_clear (&r);
    }
  genuine_opens (from, "healed");
}

static guint8
slot_type (GBytes *raw)
{
  return ((const guint8 *) g_bytes_get_data (raw, NULL))[bob_slot (raw) + 1];
}

static void
fixture_init (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *bob_path = NULL;
  g_autoptr (E2eeKey) other = e2ee_key_generate (NULL);
  g_autoptr (GPtrArray) own = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  E2eeBuddyRecord *alice;
  static const Case first_heal = { "", K_RECEIVE, b_slot_u32, S_MULTI, O_SPK, 0x7fffffffu };
  static const Case second_heal = { "", K_RECEIVE, b_slot_byte, S_SINGLE, -1, XOR | 0x80 };

  fx.dir = g_dir_make_tmp ("e2ee-catalog-v2-XXXXXX", &error);
  g_assert_no_error (error);
  fx.clock = G_GINT64_CONSTANT (1767225600);
  fx.frag_now = 1000;
  bob_path = g_build_filename (fx.dir, "bob.json", NULL);
  /* Alice's devices keep their keyrings in memory; Bob's is the database
   * under test, saved before anything is shown. */
  dev_init (&fx.a1, "/nonexistent/a1.json", ALICE);
  dev_init (&fx.a2, "/nonexistent/a2.json", ALICE);
  dev_init (&fx.bob, bob_path, BOB);
  e2ee_context_set_commit_func (fx.bob.ctx, commit_save, NULL);

  /* A1 confirms A2 as her own device and publishes both; A2 knows only
   * Bob, so A1 seals multi envelopes (Bob, A2) and A2 single ones. */
  learn (&fx.a1, ALICE, &fx.a2, E2EE_LEARN_OWN_DEVICE);
  g_assert_true (e2ee_context_set_own_trust (fx.a1.ctx, fx.a1.account,
                                             e2ee_key_get_kid (fx.a2.account->identity),
                                             E2EE_TRUST_TOFU, &error));
  learn (&fx.bob, ALICE, &fx.a1, E2EE_LEARN_FIRST_CONTACT);
  alice = e2ee_account_lookup_buddy (fx.bob.account, ALICE);
  g_assert_cmpuint (alice->devices->len, ==, 2);
  learn (&fx.a1, BOB, &fx.bob, E2EE_LEARN_FIRST_CONTACT);
  learn (&fx.a2, BOB, &fx.bob, E2EE_LEARN_FIRST_CONTACT);
  /* Bob's own other device, not confirmed: it only names a tag. */
  g_ptr_array_add (own, e2ee_key_public_copy (other));
  g_assert_cmpint (e2ee_context_learn_keys (fx.bob.ctx, fx.bob.account, BOB, own, NULL),
                   ==, E2EE_LEARN_OWN_DEVICE);
  fx.tag_bob = tag_of (fx.bob.account->identity);
  fx.tag_a1 = tag_of (fx.a1.account->identity);
  fx.tag_a2 = tag_of (fx.a2.account->identity);
  fx.tag_own = tag_of (other);
  for (guint32 t = UNKNOWN_TAG; t != ELSEWHERE; t = ELSEWHERE)
    g_assert_true (t != fx.tag_bob && t != fx.tag_a1 && t != fx.tag_a2 && t != fx.tag_own);

  /* The first envelopes start the sessions; the second of each is held
   * back (a start Bob has not seen yet). */
  fx.m_start[0] = send_raw (&fx.a1, "first multi " SECRET);
  fx.m_start[1] = send_raw (&fx.a1, "second multi " SECRET);
  fx.s_start[0] = send_raw (&fx.a2, "first single " SECRET);
  fx.s_start[1] = send_raw (&fx.a2, "second single " SECRET);
  g_assert_cmpint (g_bytes_get_size (fx.m_start[0]), >, g_bytes_get_size (fx.s_start[0]));
  g_assert_cmpuint (slot_type (fx.m_start[1]), ==, E2EE_V2_TYPE_START);
  g_assert_cmpuint (slot_type (fx.s_start[1]), ==, E2EE_V2_TYPE_START);
  deliver_ok (fx.m_start[0], "first multi " SECRET);
  deliver_ok (fx.s_start[0], "first single " SECRET);

  spend_heal (&fx.a1, &first_heal, E2EE_ERROR_V2_START);
  spend_heal (&fx.a2, &second_heal, E2EE_ERROR_AEAD_TAG);
  {
    g_autoptr (GBytes) m = source (S_MULTI), s = source (S_SINGLE);
    g_autoptr (GBytes) before = bob_snapshot (), after = NULL;

    g_assert_cmpuint (slot_type (m), ==, E2EE_V2_TYPE_MESSAGE);
    g_assert_cmpuint (slot_type (s), ==, E2EE_V2_TYPE_MESSAGE);
    /* The snapshot sees a message taken in. */
    deliver_ok (s, "single " SECRET);
    after = bob_snapshot ();
    g_assert_false (g_bytes_equal (before, after));
  }
}

static void
fixture_clear (void)
{
  g_autoptr (GDir) d = g_dir_open (fx.dir, 0, NULL);
  const char *name;

  e2ee_context_free (fx.a1.ctx);
  e2ee_context_free (fx.a2.ctx);
  e2ee_context_free (fx.bob.ctx);
  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (fx.dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (fx.dir);
  g_free (fx.dir);
  for (guint i = 0; i < 2; i++)
    {
      g_bytes_unref (fx.m_start[i]);
      g_bytes_unref (fx.s_start[i]);
    }
}

/* A real gap: A2 seals 1001 messages Bob never gets, then one he does.
 * Refused with nothing derived and Bob's state unchanged; once his ten
 * minutes are over, the next failure makes him start again and A2 is
 * read again.  Runs last: it breaks A2's chain. */
static void
test_skip_real (void)
{
  static const Case c = { "skip/real-gap", K_RECEIVE, b_genuine, S_SINGLE, 0, 0,
                          E2EE_ERROR_V2_SKIP_LIMIT, ALTERED, NULL, NULL };
  g_autoptr (GBytes) raw = NULL, before = NULL, after = NULL;
  gint code = c.code;
  E2eeRecvResult r;

  genuine_opens (&fx.a2, "before the gap");
  for (guint i = 0; i < E2EE_RATCHET_MAX_SKIP + 1; i++)
    g_bytes_unref (source (S_SINGLE));
  raw = source (S_SINGLE);
  {
    g_autoptr (GBytes) wire = armored (g_bytes_ref (raw));

    before = bob_snapshot ();
    receive (&fx.bob, ALICE, g_bytes_get_data (wire, NULL), &r);
    g_assert_cmpint (r.kind, ==, E2EE_RECV_ERROR);
    assert_no_secret (r.error);
    g_assert_null (r.reply);
    g_assert_error (r.error, E2EE_ERROR, c.code);
    e2ee_recv_result_clear (&r);
    after = bob_snapshot ();
    g_assert_true (g_bytes_equal (before, after));
  }
  fx.clock += 601;
  spend_heal (&fx.a2, &c, code);
  genuine_opens (&fx.a1, "after the gap");
}

int
main (int argc, char **argv)
{
  int status;

  e2ee_test_init (&argc, &argv);
  fixture_init ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strconcat ("/catalog-v2/", cases[i].name, NULL);
      g_test_add_data_func (path, &cases[i], run_case);
    }
  g_test_add_func ("/catalog-v2/zz-skip/real-gap", test_skip_real);
  status = g_test_run ();
  fixture_clear ();
  return status;
}
