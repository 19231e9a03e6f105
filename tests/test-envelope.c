/* Envelope v1: layout, sealing/opening, tampering, parser limits, armor.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-replay.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

#define MAX_N 33

/* A sender and up to MAX_N recipients with random pairwise keys. */
typedef struct {
  guint8 keys[MAX_N][E2EE_AEAD_KEY_LEN];
  E2eeRecipient recipients[MAX_N];
  E2eeSealParams params;
} Fixture;

static void
fixture_init (Fixture *f, guint n)
{
  memset (f, 0, sizeof *f);
  for (guint i = 0; i < MAX_N; i++)
    {
      gcry_randomize (f->keys[i], E2EE_AEAD_KEY_LEN, GCRY_WEAK_RANDOM);
      f->recipients[i].id[0] = 0xd0;
      f->recipients[i].id[1] = 0x0d;
      f->recipients[i].id[2] = (guint8) (i >> 8);
      f->recipients[i].id[3] = (guint8) i;
      f->recipients[i].key = f->keys[i];
    }
  f->params.caps = E2EE_CAPS_V1;
  memcpy (f->params.sender_id, "\x5e\x4d\xe7\x01", 4);
  f->params.counter = G_GUINT64_CONSTANT (0x0102030405);
  f->params.recipients = f->recipients;
  f->params.n_recipients = n;
}

/* Fixed part of the header: version/caps byte, flags/count byte, sender
 * id (4), counter (5).  The recipient ids follow, then the IV. */
#define FIXED 11

static gsize
iv_offset (guint n)
{
  return FIXED + 4 * n;
}

static gsize
header_len (guint n)
{
  return iv_offset (n) + 12 + (n >= 2 ? 32 : 0);
}

/* Smallest well-formed length for @n recipients: header, wraps, tag. */
static gsize
min_len (guint n)
{
  return header_len (n) + (n >= 2 ? 48 * n : 0) + 16;
}

static GBytes *
seal_text (Fixture *f, const char *text)
{
  g_autoptr (GError) error = NULL;
  GBytes *env = e2ee_envelope_seal (&f->params, (const guint8 *) text, strlen (text), &error);

  g_assert_no_error (error);
  g_assert_nonnull (env);
  return env;
}

/* Parses and opens @data for the recipient with device id @id; returns the error code or 0
 * (and the plaintext in *@out when not NULL). */
static gint
try_open (const guint8 *data, gsize len, const guint8 *id, const guint8 *key, char **out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeEnvelope) env = e2ee_envelope_parse (data, len, &error);
  guint8 *plain = (guint8 *) "unset";
  gsize plain_len = 99;
  gint index;

  if (env == NULL)
    {
      g_assert_error (error, E2EE_ERROR, error->code);
      return error->code;
    }
  g_assert_no_error (error);
  index = e2ee_envelope_find_recipient (env, id);
  if (index < 0)
    return E2EE_ERROR_NOT_FOR_US;
  if (!e2ee_envelope_open (env, (guint) index, key, &plain, &plain_len, &error))
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == E2EE_ERROR);
      /* Nothing is handed out on failure. */
      g_assert_null (plain);
      g_assert_cmpuint (plain_len, ==, 0);
      return error->code;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (plain[plain_len], ==, 0);
  if (out)
    *out = g_strndup ((const char *) plain, plain_len);
  e2ee_secret_free (plain, plain_len + 1);
  return 0;
}

static void
test_roundtrip_one (void)
{
  Fixture f;
  const char *text = "hello, Bob";
  g_autoptr (GBytes) env = NULL;
  g_autoptr (E2eeEnvelope) parsed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  const guint8 *d;
  gsize len;

  fixture_init (&f, 1);
  env = seal_text (&f, text);
  d = g_bytes_get_data (env, &len);
  /* Exact size: header + ciphertext + tag; no padding. */
  g_assert_cmpuint (len, ==, header_len (1) + strlen (text) + 16);
  /* Version 1 in the high nibble, caps in the low one. */
  g_assert_cmpuint (d[0], ==, 0x10 | E2EE_CAPS_V1);
  /* No flags; one recipient is stored as 0. */
  g_assert_cmpuint (d[1], ==, 0);
  g_assert_cmpmem (d + 2, 4, f.params.sender_id, 4);
  g_assert_cmpmem (d + 6, 5, "\x01\x02\x03\x04\x05", 5);
  g_assert_cmpmem (d + 11, 4, f.recipients[0].id, 4);

  parsed = e2ee_envelope_parse (d, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (e2ee_envelope_get_version (parsed), ==, 1);
  g_assert_cmpuint (e2ee_envelope_get_caps (parsed), ==, E2EE_CAPS_V1);
  g_assert_cmpuint (e2ee_envelope_get_flags (parsed), ==, 0);
  g_assert_cmpuint (e2ee_envelope_get_counter (parsed), ==, f.params.counter);
  g_assert_cmpuint (e2ee_envelope_get_n_recipients (parsed), ==, 1);
  g_assert_cmpmem (e2ee_envelope_get_sender_id (parsed), 4, f.params.sender_id, 4);
  g_assert_cmpint (e2ee_envelope_find_recipient (parsed, f.recipients[0].id), ==, 0);
  g_assert_cmpint (e2ee_envelope_find_recipient (parsed, f.recipients[1].id), ==, -1);

  g_assert_cmpint (try_open (d, len, f.recipients[0].id, f.keys[0], &out), ==, 0);
  g_assert_cmpstr (out, ==, text);
  /* Wrong key. */
  g_assert_cmpint (try_open (d, len, f.recipients[0].id, f.keys[1], NULL), ==, E2EE_ERROR_AEAD_TAG);
}

static void
test_roundtrip_three (void)
{
  Fixture f;
  const char *text = "to Bob's two devices and my own laptop";
  g_autoptr (GBytes) env = NULL;
  const guint8 *d;
  gsize len;

  fixture_init (&f, 3);
  env = seal_text (&f, text);
  d = g_bytes_get_data (env, &len);
  g_assert_cmpuint (len, ==, header_len (3) + 3 * 48 + strlen (text) + 16);
  g_assert_cmpuint (d[1], ==, 3 - 1);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *out = NULL;
      g_assert_cmpmem (d + FIXED + 4 * i, 4, f.recipients[i].id, 4);
      g_assert_cmpint (try_open (d, len, f.recipients[i].id, f.keys[i], &out), ==, 0);
      g_assert_cmpstr (out, ==, text);
      /* Recipient i's key does not open recipient (i+1)'s wrap. */
      g_assert_cmpint (try_open (d, len, f.recipients[(i + 1) % 3].id, f.keys[i], NULL), ==,
                       E2EE_ERROR_AEAD_TAG);
    }
}

static void
test_max_recipients (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  const guint8 *d;
  gsize len;

  fixture_init (&f, E2EE_ENVELOPE_MAX_RECIPIENTS);
  env = seal_text (&f, "many");
  d = g_bytes_get_data (env, &len);
  /* 32 recipients fill the five count bits: 31 = 0x1f. */
  g_assert_cmpuint (d[1], ==, 0x1f);
  g_assert_cmpuint (len, ==, header_len (32) + 32 * 48 + 4 + 16);
  g_assert_cmpint (try_open (d, len, f.recipients[31].id, f.keys[31], &out), ==, 0);
  g_assert_cmpstr (out, ==, "many");

  f.params.n_recipients = 33;
  g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_RECIPIENTS);
  g_clear_error (&error);
  f.params.n_recipients = 0;
  g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_RECIPIENTS);
}

static void
test_empty_and_large (void)
{
  Fixture f;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) env = NULL;
  g_autoptr (GBytes) big = NULL;
  g_autofree guint8 *buf = g_malloc0 (E2EE_ENVELOPE_MAX_PLAINTEXT + 1);
  g_autofree char *out = NULL;
  const guint8 *d;
  gsize len;

  fixture_init (&f, 2);
  env = e2ee_envelope_seal (&f.params, NULL, 0, &error);
  g_assert_no_error (error);
  d = g_bytes_get_data (env, &len);
  g_assert_cmpint (try_open (d, len, f.recipients[1].id, f.keys[1], &out), ==, 0);
  g_assert_cmpstr (out, ==, "");

  memset (buf, 'a', E2EE_ENVELOPE_MAX_PLAINTEXT + 1);
  big = e2ee_envelope_seal (&f.params, buf, E2EE_ENVELOPE_MAX_PLAINTEXT, &error);
  g_assert_no_error (error);
  g_assert_nonnull (big);
  g_assert_null (e2ee_envelope_seal (&f.params, buf, E2EE_ENVELOPE_MAX_PLAINTEXT + 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TOO_LARGE);
}

static void
test_seal_rejects (void)
{
  Fixture f;
  g_autoptr (GError) error = NULL;

  fixture_init (&f, 3);
  /* Duplicate recipient ids. */
  memcpy (f.recipients[2].id, f.recipients[0].id, 4);
  g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_RECIPIENTS);
  g_clear_error (&error);

  fixture_init (&f, 1);
  f.params.counter = E2EE_ENVELOPE_COUNTER_MAX + 1;
  g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS);
  g_clear_error (&error);

  fixture_init (&f, 1);
  f.params.caps = 0x02; /* v2 only, no v1 */
  g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS);
  g_clear_error (&error);

  /* Caps beyond the four bits the header has room for (v5 and up). */
  for (guint bit = 4; bit < 8; bit++)
    {
      fixture_init (&f, 1);
      f.params.caps = (guint8) (E2EE_CAPS_V1 | 1u << bit);
      g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS);
      g_clear_error (&error);
    }

  fixture_init (&f, 1);
  f.params.pad_block = 1025;
  g_assert_null (e2ee_envelope_seal (&f.params, (const guint8 *) "x", 1, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS);
}

/* All four capability bits travel in the low nibble of byte 0 and are
 * authenticated: a receiver sees exactly what the sender sealed. */
static void
test_caps_nibble (void)
{
  for (guint caps = 1; caps <= 0x0f; caps += 2)
    {
      Fixture f;
      g_autoptr (GBytes) env = NULL;
      g_autoptr (E2eeEnvelope) parsed = NULL;
      g_autofree guint8 *copy = NULL;
      const guint8 *d;
      gsize len;

      fixture_init (&f, 2);
      f.params.caps = (guint8) caps;
      env = seal_text (&f, "caps");
      d = g_bytes_get_data (env, &len);
      g_assert_cmpuint (d[0], ==, 0x10 | caps);
      parsed = e2ee_envelope_parse (d, len, NULL);
      g_assert_nonnull (parsed);
      g_assert_cmpuint (e2ee_envelope_get_caps (parsed), ==, caps);
      g_assert_cmpuint (e2ee_envelope_get_version (parsed), ==, 1);
      for (guint r = 0; r < 2; r++)
        g_assert_cmpint (try_open (d, len, f.recipients[r].id, f.keys[r], NULL), ==, 0);
      /* Lowering the caps to v1 only (a downgrade in transit) is refused. */
      copy = g_memdup2 (d, len);
      copy[0] = 0x10 | E2EE_CAPS_V1;
      if (caps != E2EE_CAPS_V1)
        for (guint r = 0; r < 2; r++)
          g_assert_cmpint (try_open (copy, len, f.recipients[r].id, f.keys[r], NULL), ==,
                           E2EE_ERROR_AEAD_TAG);
    }
}

static void
test_counter_max (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autoptr (E2eeEnvelope) parsed = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;
  const guint8 *d;

  fixture_init (&f, 1);
  f.params.counter = E2EE_ENVELOPE_COUNTER_MAX;
  env = seal_text (&f, "last");
  d = g_bytes_get_data (env, &len);
  g_assert_cmpmem (d + 6, 5, "\xff\xff\xff\xff\xff", 5);
  parsed = e2ee_envelope_parse (d, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (e2ee_envelope_get_counter (parsed), ==, E2EE_ENVELOPE_COUNTER_MAX);
}

static void
test_padding (void)
{
  const char *texts[] = { "", "a", "fifteen bytes..", "sixteen bytes..." ,
                          "ends with zeros\0\0", "x\x80" };
  const gsize lens[] = { 0, 1, 15, 16, 17, 2 };

  for (guint t = 0; t < G_N_ELEMENTS (texts); t++)
    for (gsize block = 1; block <= 64; block *= 4)
      for (guint extra = 0; extra <= 3; extra++)
        {
          Fixture f;
          g_autoptr (GBytes) env = NULL;
          g_autoptr (GError) error = NULL;
          g_autoptr (E2eeEnvelope) parsed = NULL;
          guint8 iv[12] = { 1, 2, 3 };
          guint8 *plain = NULL;
          gsize plain_len = 0, len, body_len;
          const guint8 *d;

          fixture_init (&f, 1);
          f.params.pad_block = block;
          f.params.fixed_iv = iv;
          f.params.fixed_pad_blocks = extra;
          env = e2ee_envelope_seal (&f.params, (const guint8 *) texts[t], lens[t], &error);
          g_assert_no_error (error);
          d = g_bytes_get_data (env, &len);
          /* The padded flag sits above the count (n - 1 = 0). */
          g_assert_cmpuint (d[1], ==, E2EE_ENVELOPE_FLAG_PADDED << 5);
          body_len = len - header_len (1) - 16;
          /* Smallest multiple of the block above the text, plus extras. */
          g_assert_cmpuint (body_len % block, ==, 0);
          g_assert_cmpuint (body_len, ==, ((lens[t] + block) / block + extra) * block);

          parsed = e2ee_envelope_parse (d, len, &error);
          g_assert_no_error (error);
          g_assert_true (e2ee_envelope_open (parsed, 0, f.keys[0], &plain, &plain_len, &error));
          g_assert_no_error (error);
          g_assert_cmpmem (plain, plain_len, texts[t], lens[t]);
          e2ee_secret_free (plain, plain_len + 1);
        }
}

static void
test_padding_random (void)
{
  /* Without fixed parameters the extra block count varies in 0..3. */
  gboolean seen[4] = { FALSE };

  for (guint i = 0; i < 200; i++)
    {
      Fixture f;
      g_autoptr (GBytes) env = NULL;
      gsize len, blocks;

      fixture_init (&f, 1);
      f.params.pad_block = 16;
      env = seal_text (&f, "short");
      g_bytes_get_data (env, &len);
      blocks = (len - header_len (1) - 16) / 16;
      g_assert_cmpuint (blocks, >=, 1);
      g_assert_cmpuint (blocks, <=, 4);
      seen[blocks - 1] = TRUE;
    }
  for (guint i = 0; i < 4; i++)
    g_assert_true (seen[i]);
}

/* Seals a body whose padding is malformed under a valid tag, by building
 * the envelope by hand with the direct key. */
static void
test_bad_padding_inside_tag (void)
{
  const guint8 bodies[][4] = {
    { 'a', 'b', 0, 0 },       /* no 0x80 marker */
    { 0, 0, 0, 0 },           /* all zeros */
  };

  for (guint b = 0; b <= G_N_ELEMENTS (bodies); b++)
    {
      Fixture f;
      guint8 env[FIXED + 4 + 12 + 4 + 16];
      g_autoptr (E2eeAead) aead = NULL;
      g_autoptr (GError) error = NULL;
      gsize body_len = b < G_N_ELEMENTS (bodies) ? 4 : 0;

      fixture_init (&f, 1);
      memset (env, 0, sizeof env);
      env[0] = 0x10 | E2EE_CAPS_V1;
      env[1] = E2EE_ENVELOPE_FLAG_PADDED << 5;   /* n - 1 = 0 */
      memcpy (env + FIXED, f.recipients[0].id, 4);
      gcry_create_nonce (env + iv_offset (1), 12);
      aead = e2ee_aead_new (f.keys[0], &error);
      g_assert_no_error (error);
      g_assert_true (e2ee_aead_seal (aead, env + iv_offset (1), env, header_len (1),
                                     body_len ? bodies[b] : NULL, body_len,
                                     env + header_len (1), env + header_len (1) + body_len,
                                     &error));
      g_assert_cmpint (try_open (env, header_len (1) + body_len + 16, f.recipients[0].id,
                                 f.keys[0], NULL), ==, E2EE_ERROR_ENVELOPE_TRAILING);
    }
}

/* Flips every bit of every byte; each alteration is refused, by the parser
 * for the structural bytes and by authentication for everything else. */
static void
check_tamper_all (guint n)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autofree guint8 *copy = NULL;
  const guint8 *d;
  gsize len, hlen = header_len (n);
  guint counts[128] = { 0 };

  fixture_init (&f, n);
  f.params.pad_block = 8;
  env = seal_text (&f, "tamper with me");
  d = g_bytes_get_data (env, &len);
  copy = g_memdup2 (d, len);
  for (gsize i = 0; i < len; i++)
    for (guint bit = 0; bit < 8; bit++)
      {
        gint code;

        copy[i] ^= (guint8) (1u << bit);
        if (n >= 2 && i >= hlen && i < hlen + 48 * (n - 1))
          {
            /* Another recipient's wrap: only that recipient can tell, and
             * does; ours is unaffected (each wrap is checked by its owner). */
            guint j = (guint) ((i - hlen) / 48);
            code = try_open (copy, len, f.recipients[j].id, f.keys[j], NULL);
            g_assert_cmpint (try_open (copy, len, f.recipients[n - 1].id,
                                       f.keys[n - 1], NULL), ==, 0);
          }
        else
          code = try_open (copy, len, f.recipients[n - 1].id, f.keys[n - 1], NULL);
        copy[i] ^= (guint8) (1u << bit);
        if (code == 0)
          g_test_message ("byte %" G_GSIZE_FORMAT " bit %u accepted", i, bit);
        g_assert_cmpint (code, !=, 0);
        counts[code]++;
        if (i == 0 && bit >= 4)
          g_assert_cmpint (code, ==, E2EE_ERROR_ENVELOPE_VERSION);
        else if (i == 0 && bit == 0)
          g_assert_cmpint (code, ==, E2EE_ERROR_ENVELOPE_FLAGS);  /* caps lacks v1 */
        else if (i == 1 && bit >= 6)
          g_assert_cmpint (code, ==, E2EE_ERROR_ENVELOPE_FLAGS);  /* reserved flag */
        else if (i == 1 && bit < 5)
          /* Another recipient count: the lengths, our id or the
           * authenticated header no longer fit. */
          g_assert_true (code == E2EE_ERROR_ENVELOPE_RECIPIENTS
                         || code == E2EE_ERROR_ENVELOPE_TRUNCATED
                         || code == E2EE_ERROR_NOT_FOR_US
                         || code == E2EE_ERROR_AEAD_TAG);
        else if (i >= FIXED + 4 * (n - 1) && i < FIXED + 4 * n)
          /* Our own id altered: the envelope is no longer addressed to us
           * (or, for n >= 2, may now repeat another recipient's id). */
          g_assert_true (code == E2EE_ERROR_NOT_FOR_US
                         || code == E2EE_ERROR_ENVELOPE_RECIPIENTS);
        else if (i >= FIXED && i < FIXED + 4 * n)
          /* Another recipient's id: refused as a duplicate id when it now
           * equals one, else by authentication. */
          g_assert_true (code == E2EE_ERROR_AEAD_TAG
                         || code == E2EE_ERROR_ENVELOPE_RECIPIENTS);
        else
          /* caps bits 1-3, padded flag, sender id, counter, IV,
           * commitment, wrapped keys, body, tag. */
          g_assert_cmpint (code, ==, E2EE_ERROR_AEAD_TAG);
      }
  /* Regions exist where they should. */
  g_assert_cmpuint (counts[E2EE_ERROR_AEAD_TAG], >=, 8 * (len - 8));
  g_assert_cmpuint (len, >, hlen);
  /* The untouched envelope still opens. */
  g_assert_cmpint (try_open (copy, len, f.recipients[n - 1].id, f.keys[n - 1], NULL), ==, 0);
}

static void
test_tamper_one (void)
{
  check_tamper_all (1);
}

static void
test_tamper_three (void)
{
  check_tamper_all (3);
}

static void
test_truncation (void)
{
  static const guint counts[] = { 1, 2, 3, E2EE_ENVELOPE_MAX_RECIPIENTS };

  for (guint c = 0; c < G_N_ELEMENTS (counts); c++)
    {
      guint n = counts[c];
      Fixture f;
      g_autoptr (GBytes) env = NULL;
      g_autofree guint8 *longer = NULL;
      const guint8 *d;
      gsize len;

      fixture_init (&f, n);
      env = seal_text (&f, "truncate me");
      d = g_bytes_get_data (env, &len);
      for (gsize cut = 0; cut < len; cut++)
        {
          gint code = try_open (d, cut, f.recipients[n - 1].id, f.keys[n - 1], NULL);
          if (cut < min_len (n))
            g_assert_cmpint (code, ==, E2EE_ERROR_ENVELOPE_TRUNCATED);
          else
            g_assert_cmpint (code, ==, E2EE_ERROR_AEAD_TAG);
        }
      /* A byte appended is also refused. */
      longer = g_malloc (len + 1);
      memcpy (longer, d, len);
      longer[len] = 0;
      g_assert_cmpint (try_open (longer, len + 1, f.recipients[n - 1].id, f.keys[n - 1], NULL), ==,
                       E2EE_ERROR_AEAD_TAG);
    }
}

/* Hand-made headers for the parser's structural checks. */
static gint
parse_code (const guint8 *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeEnvelope) env = e2ee_envelope_parse (data, len, &error);

  if (env)
    return 0;
  g_assert_true (error->domain == E2EE_ERROR);
  return error->code;
}

/* Byte 0: version in the high nibble, checked first; then caps in the low
 * nibble must include v1.  Every value is tried on a sealed envelope. */
static void
test_parse_version_caps (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autofree guint8 *buf = NULL;
  const guint8 *d;
  gsize len;

  fixture_init (&f, 2);
  env = seal_text (&f, "x");
  d = g_bytes_get_data (env, &len);
  buf = g_memdup2 (d, len);
  g_assert_cmpint (parse_code (buf, len), ==, 0);

  for (guint v = 0; v < 256; v++)
    {
      gint want = (v >> 4) != 1 ? E2EE_ERROR_ENVELOPE_VERSION
                  : !(v & E2EE_CAPS_V1) ? E2EE_ERROR_ENVELOPE_FLAGS : 0;

      buf[0] = (guint8) v;
      g_assert_cmpint (parse_code (buf, len), ==, want);
      if (want == 0)
        {
          g_autoptr (E2eeEnvelope) parsed = e2ee_envelope_parse (buf, len, NULL);
          g_assert_cmpuint (e2ee_envelope_get_version (parsed), ==, 1);
          g_assert_cmpuint (e2ee_envelope_get_caps (parsed), ==, v & 0x0f);
        }
    }
  /* The cases that matter, by name: version nibble 0 (a v1 envelope of
   * the old layout starts with 0x01) and 2, and caps without v1. */
  buf[0] = 0x01;
  g_assert_cmpint (parse_code (buf, len), ==, E2EE_ERROR_ENVELOPE_VERSION);
  buf[0] = 0x21;
  g_assert_cmpint (parse_code (buf, len), ==, E2EE_ERROR_ENVELOPE_VERSION);
  buf[0] = 0x10;
  g_assert_cmpint (parse_code (buf, len), ==, E2EE_ERROR_ENVELOPE_FLAGS);
  buf[0] = 0x1e;
  g_assert_cmpint (parse_code (buf, len), ==, E2EE_ERROR_ENVELOPE_FLAGS);
  buf[0] = 0x13;  /* v1 and v2: structurally fine (authenticated later) */
  g_assert_cmpint (parse_code (buf, len), ==, 0);
}

/* Byte 1: three flag bits (bit 0 padded, bits 1-2 reserved), checked
 * before the count in the low five bits, which must then fit the length. */
static void
test_parse_flags_count (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autofree guint8 *buf = NULL;
  const guint8 *d;
  gsize len;

  fixture_init (&f, 2);
  env = seal_text (&f, "x");
  d = g_bytes_get_data (env, &len);
  buf = g_memdup2 (d, len);
  g_assert_cmpuint (buf[1], ==, 1);

  for (guint b = 0; b < 256; b++)
    {
      guint flags = b >> 5, n = (b & 0x1f) + 1;
      gint want = (flags & ~E2EE_ENVELOPE_FLAG_PADDED) ? E2EE_ERROR_ENVELOPE_FLAGS
                  : len < min_len (n) ? E2EE_ERROR_ENVELOPE_TRUNCATED : 0;

      buf[1] = (guint8) b;
      g_assert_cmpint (parse_code (buf, len), ==, want);
    }
  /* Each reserved bit alone, with and without the padded bit. */
  for (guint bit = 1; bit < 3; bit++)
    {
      buf[1] = (guint8) ((1u << bit) << 5 | 1);
      g_assert_cmpint (parse_code (buf, len), ==, E2EE_ERROR_ENVELOPE_FLAGS);
      buf[1] |= E2EE_ENVELOPE_FLAG_PADDED << 5;
      g_assert_cmpint (parse_code (buf, len), ==, E2EE_ERROR_ENVELOPE_FLAGS);
    }
  buf[1] = E2EE_ENVELOPE_FLAG_PADDED << 5 | 1;
  g_assert_cmpint (parse_code (buf, len), ==, 0);
}

/* Five count bits say 1..32 recipients and nothing else: every count is
 * accepted at exactly its minimum length and refused one byte short. */
static void
test_parse_every_count (void)
{
  guint8 buf[FIXED + 4 * 32 + 12 + 32 + 48 * 32 + 16];

  g_assert_cmpuint (sizeof buf, ==, min_len (32));
  for (guint n = 1; n <= E2EE_ENVELOPE_MAX_RECIPIENTS; n++)
    {
      g_autoptr (E2eeEnvelope) parsed = NULL;

      memset (buf, 0, sizeof buf);
      buf[0] = 0x10 | E2EE_CAPS_V1;
      buf[1] = (guint8) (n - 1);
      for (guint i = 0; i < n; i++)
        {
          buf[FIXED + 4 * i] = (guint8) i;
          buf[FIXED + 4 * i + 1] = 0x42;
        }
      g_assert_cmpint (parse_code (buf, min_len (n)), ==, 0);
      g_assert_cmpint (parse_code (buf, min_len (n) - 1), ==, E2EE_ERROR_ENVELOPE_TRUNCATED);
      parsed = e2ee_envelope_parse (buf, min_len (n), NULL);
      g_assert_cmpuint (e2ee_envelope_get_n_recipients (parsed), ==, n);
      g_assert_cmpint (e2ee_envelope_find_recipient (parsed, buf + FIXED + 4 * (n - 1)), ==,
                       (gint) n - 1);
    }
  /* Duplicate recipient ids. */
  buf[FIXED + 4 * 31] = 0;
  g_assert_cmpint (parse_code (buf, sizeof buf), ==, E2EE_ERROR_ENVELOPE_RECIPIENTS);
  /* Shorter than the fixed header, whatever it says. */
  for (gsize cut = 0; cut < FIXED; cut++)
    g_assert_cmpint (parse_code (buf, cut), ==, E2EE_ERROR_ENVELOPE_TRUNCATED);
}

static void
test_parse_too_large (void)
{
  gsize limit = header_len (1) + 16 + E2EE_ENVELOPE_MAX_PLAINTEXT + 4 * 1024 + 1;
  g_autofree guint8 *buf = g_malloc0 (limit + 1);

  buf[0] = 0x10 | E2EE_CAPS_V1;
  buf[1] = 0;   /* one recipient */
  g_assert_cmpint (parse_code (buf, limit), ==, 0);
  g_assert_cmpint (parse_code (buf, limit + 1), ==, E2EE_ERROR_ENVELOPE_TOO_LARGE);
}

/* ---- a co-recipient forging a body for another recipient ------------- */

/* Multiplication in GF(2^128) as GCM defines it (NIST SP 800-38D 6.3). */
static void
gf128_mul (const guint8 x[16], const guint8 y[16], guint8 out[16])
{
  guint8 z[16] = { 0 }, v[16];

  memcpy (v, y, 16);
  for (guint i = 0; i < 128; i++)
    {
      gboolean lsb;
      if (x[i / 8] & (0x80 >> (i % 8)))
        for (guint k = 0; k < 16; k++)
          z[k] ^= v[k];
      lsb = v[15] & 1;
      for (gint k = 15; k > 0; k--)
        v[k] = (guint8) (v[k] >> 1 | v[k - 1] << 7);
      v[0] >>= 1;
      if (lsb)
        v[0] ^= 0xe1;
    }
  memcpy (out, z, 16);
}

/* Recipient 0 learns the message key from its wrap. */
static void
unwrap_message_key (const guint8 *d, guint n, const guint8 key[32], guint8 mk[32])
{
  gsize hlen = header_len (n);
  const guint8 *iv = d + iv_offset (n);
  gcry_cipher_hd_t hd;
  guint8 commit[32];

  /* Decrypt the wrap without its AAD check: CTR mode from counter 2 is
   * what GCM encryption uses, so a co-recipient needs only its key. */
  gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_CTR, 0);
  gcry_cipher_setkey (hd, key, 32);
  {
    guint8 ctr[16];
    memcpy (ctr, iv, 12);
    memcpy (ctr + 12, "\0\0\0\2", 4);
    gcry_cipher_setctr (hd, ctr, 16);
  }
  gcry_cipher_decrypt (hd, mk, 32, d + hlen, 32);
  gcry_cipher_close (hd);
  /* It is the committed key. */
  gcry_md_hash_buffers (GCRY_MD_SHA256, 0, commit,
                        (gcry_buffer_t[]) { { .data = (void *) "purple-e2ee/v1 key commitment",
                                              .len = 29 },
                                            { .data = mk, .len = 32 } }, 2);
  g_assert_cmpmem (commit, 32, iv + 12, 32);
}

static void
test_corecipient_reencrypt (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autofree guint8 *forged = NULL;
  g_autoptr (E2eeAead) aead = NULL;
  const char *fake = "pay Mallory 1000";
  guint8 mk[32];
  gsize len, hlen = header_len (3), body_off = hlen + 3 * 48;
  const guint8 *d;

  fixture_init (&f, 3);
  env = seal_text (&f, "pay Charlie 1000");
  d = g_bytes_get_data (env, &len);
  unwrap_message_key (d, 3, f.keys[0], mk);
  /* Recipient 0 replaces the body with its own text under the message key,
   * keeping the header, commitment and every wrap. */
  forged = g_memdup2 (d, len);
  aead = e2ee_aead_new (mk, NULL);
  g_assert_true (e2ee_aead_seal (aead, d + iv_offset (3), forged, hlen,
                                 (const guint8 *) fake, strlen (fake),
                                 forged + body_off, forged + body_off + strlen (fake), NULL));
  g_assert_cmpint (try_open (forged, len, f.recipients[1].id, f.keys[1], NULL), ==, E2EE_ERROR_AEAD_TAG);
  g_assert_cmpint (try_open (forged, len, f.recipients[2].id, f.keys[2], NULL), ==, E2EE_ERROR_AEAD_TAG);
  e2ee_wipe (mk, sizeof mk);
}

/* Stronger: with the message key known, GHASH is a known linear function,
 * so the body can be changed while its tag stays the same.  Changing
 * ciphertext block j by D and block j+1 by D*H leaves the tag unchanged.
 * The wraps must therefore cover the body itself, not only its tag. */
static void
test_corecipient_same_tag (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autofree guint8 *forged = NULL;
  g_autofree char *out = NULL;
  const char *text = "Meet at north gate at 10:00. Bring the documents. -- Alice";
  guint8 mk[32], h[16], delta[16], delta2[16];
  gsize len, hlen = header_len (3), body_off = hlen + 3 * 48;
  const guint8 *d;
  gcry_cipher_hd_t hd;
  guint8 *c;

  fixture_init (&f, 3);
  env = seal_text (&f, text);
  d = g_bytes_get_data (env, &len);
  unwrap_message_key (d, 3, f.keys[0], mk);
  gcry_cipher_open (&hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_ECB, 0);
  gcry_cipher_setkey (hd, mk, 32);
  memset (h, 0, 16);
  gcry_cipher_encrypt (hd, h, 16, NULL, 0);
  gcry_cipher_close (hd);

  forged = g_memdup2 (d, len);
  c = forged + body_off;
  /* Turn "north" into "south" in block 0; block 1 absorbs the change. */
  memset (delta, 0, 16);
  delta[8] = 'n' ^ 's';
  delta[9] = 'o' ^ 'o';
  delta[10] = 'r' ^ 'u';
  gf128_mul (delta, h, delta2);
  for (guint k = 0; k < 16; k++)
    {
      c[k] ^= delta[k];
      c[16 + k] ^= delta2[k];
    }
  /* Sanity: under the message key alone the forgery authenticates. */
  {
    g_autoptr (E2eeAead) aead = e2ee_aead_new (mk, NULL);
    g_autofree guint8 *p = g_malloc (len);
    g_autoptr (GError) error = NULL;
    gsize blen = len - body_off - 16;
    g_assert_true (e2ee_aead_open (aead, d + iv_offset (3), forged, hlen, c, blen,
                                   c + blen, p, &error));
    g_assert_no_error (error);
    g_assert_true (memcmp (p, "Meet at south", 13) == 0);
  }
  /* But no other recipient accepts it. */
  g_assert_cmpint (try_open (forged, len, f.recipients[1].id, f.keys[1], NULL), ==, E2EE_ERROR_AEAD_TAG);
  g_assert_cmpint (try_open (forged, len, f.recipients[2].id, f.keys[2], NULL), ==, E2EE_ERROR_AEAD_TAG);
  g_assert_cmpint (try_open (d, len, f.recipients[1].id, f.keys[1], &out), ==, 0);
  g_assert_cmpstr (out, ==, text);
  e2ee_wipe (mk, sizeof mk);
}

/* A sender giving recipients different message keys is caught by the
 * commitment: rewrap recipient 1 with another key and reseal nothing else. */
static void
test_commitment_mismatch (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autofree guint8 *forged = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *aad = NULL;
  guint8 other_mk[32];
  gsize len, hlen = header_len (2), body_off = hlen + 2 * 48, aad_len;
  const guint8 *d;
  g_autoptr (E2eeAead) aead = NULL;

  fixture_init (&f, 2);
  env = seal_text (&f, "same for all?");
  d = g_bytes_get_data (env, &len);
  forged = g_memdup2 (d, len);
  memset (other_mk, 0x42, 32);
  /* The sender knows every pairwise key: a well-formed wrap of another key
   * for recipient 1, authenticated like the real ones. */
  aad_len = hlen + (len - body_off);
  aad = g_malloc (aad_len);
  memcpy (aad, forged, hlen);
  memcpy (aad + hlen, forged + body_off, len - body_off);
  aead = e2ee_aead_new (f.keys[1], NULL);
  g_assert_true (e2ee_aead_seal (aead, d + iv_offset (2), aad, aad_len, other_mk, 32,
                                 forged + hlen + 48, forged + hlen + 48 + 32, &error));
  g_assert_cmpint (try_open (forged, len, f.recipients[1].id, f.keys[1], NULL), ==, E2EE_ERROR_AEAD_TAG);
  g_assert_cmpint (try_open (forged, len, f.recipients[0].id, f.keys[0], NULL), ==, 0);
}

static void
test_fixed_iv_deterministic (void)
{
  Fixture f;
  guint8 iv[12], mk[32];
  g_autoptr (GBytes) a = NULL;
  g_autoptr (GBytes) b = NULL;
  g_autoptr (GBytes) c = NULL;

  memset (iv, 7, sizeof iv);
  memset (mk, 9, sizeof mk);
  fixture_init (&f, 2);
  f.params.fixed_iv = iv;
  f.params.fixed_message_key = mk;
  a = seal_text (&f, "same");
  b = seal_text (&f, "same");
  g_assert_true (g_bytes_equal (a, b));
  g_assert_cmpmem ((const guint8 *) g_bytes_get_data (a, NULL) + iv_offset (2), 12, iv, 12);
  /* Random IVs otherwise. */
  f.params.fixed_iv = NULL;
  f.params.fixed_message_key = NULL;
  g_clear_pointer (&b, g_bytes_unref);
  b = seal_text (&f, "same");
  c = seal_text (&f, "same");
  g_assert_false (g_bytes_equal (b, c));
  g_assert_true (memcmp ((const guint8 *) g_bytes_get_data (b, NULL) + iv_offset (2),
                         (const guint8 *) g_bytes_get_data (c, NULL) + iv_offset (2), 12) != 0);
}

/* ---- armor ------------------------------------------------------------ */

static void
test_armor (void)
{
  Fixture f;
  g_autoptr (GBytes) env = NULL;
  g_autoptr (GBytes) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *spaced = NULL;
  g_autoptr (GBytes) back2 = NULL;

  fixture_init (&f, 1);
  env = seal_text (&f, "armored");
  text = e2ee_armor_encode (env);
  g_assert_true (g_str_has_prefix (text, "?E2E:"));
  for (const char *p = text + 5; *p; p++)
    g_assert_true (g_ascii_isalnum (*p) || *p == '-' || *p == '_');
  g_assert_cmpuint (strlen (text), ==, 5 + (g_bytes_get_size (env) * 4 + 2) / 3);
  g_assert_true (e2ee_armor_detect (text));
  back = e2ee_armor_decode (text, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (env, back));

  spaced = g_strdup_printf (" \t%s\r\n", text);
  g_assert_true (e2ee_armor_detect (spaced));
  back2 = e2ee_armor_decode (spaced, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (env, back2));
  g_assert_false (e2ee_armor_detect ("hello ?E2E:AQ"));
  g_assert_false (e2ee_armor_detect ("?E2F:01234567:1/2:x"));
}

static void
test_armor_noncanonical (void)
{
  /* "AQE" is the canonical encoding of 01 01; the others are not. */
  const char *bad[] = {
    "?E2E:AQE=",        /* padding */
    "?E2E:AQF",         /* trailing bits set */
    "?E2E:AQ+B",        /* base64 (not url) alphabet */
    "?E2E:AQ/B",
    "?E2E:AQ E",        /* inner whitespace */
    "?E2E:AQ\nE",
    "?E2E:A",           /* length 1 mod 4 */
    "?e2e:AQE",         /* prefix is case-sensitive */
    "?E2E AQE",
    "E2E:AQE",
    "",
    "?E2E:AQ\xc3\xa9",  /* non-ASCII */
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) b = e2ee_armor_decode (bad[i], &error);
      g_assert_null (b);
      g_assert_error (error, E2EE_ERROR, E2EE_ERROR_ARMOR);
    }
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) b = e2ee_armor_decode ("?E2E:AQE", &error);
    g_assert_no_error (error);
    g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), "\x01\x01", 2);
  }
}

/* The replay window: 64 messages whatever their spacing, and the stored
 * form (high + bitmap of the 64 values below) never widens it on load. */
static void
test_replay_window (void)
{
  E2eeReplayWindow w, back;
  gboolean init = FALSE;
  guint64 high = 0, bitmap = 0;

  e2ee_replay_window_load (&w, FALSE, 0, 0);
  /* Counters 1000 ticks apart, the newest first. */
  for (gint i = 69; i >= 6; i--)
    {
      g_assert_true (e2ee_replay_window_fresh (&w, 5000 + 1000 * (guint64) i));
      e2ee_replay_window_record (&w, 5000 + 1000 * (guint64) i, &init, &high, &bitmap);
      g_assert_false (e2ee_replay_window_fresh (&w, 5000 + 1000 * (guint64) i));
    }
  g_assert_true (init);
  g_assert_cmpuint (high, ==, 5000 + 69000);
  g_assert_cmpuint (bitmap, ==, 0);
  /* 64 newer accepted: older ones are outside the window. */
  g_assert_false (e2ee_replay_window_fresh (&w, 5000 + 5000));
  g_assert_false (e2ee_replay_window_fresh (&w, 0));
  /* Between two accepted ones, never seen: accepted, and the oldest goes. */
  g_assert_true (e2ee_replay_window_fresh (&w, 5000 + 6500));
  e2ee_replay_window_record (&w, 5000 + 6500, &init, &high, &bitmap);
  g_assert_false (e2ee_replay_window_fresh (&w, 5000 + 6000));
  g_assert_false (e2ee_replay_window_fresh (&w, 5000 + 6200));
  g_assert_true (e2ee_replay_window_fresh (&w, 5000 + 7500));

  /* Reloaded from the stored form: nothing more than 64 below high. */
  e2ee_replay_window_load (&back, init, high, bitmap);
  g_assert_false (e2ee_replay_window_fresh (&back, high));
  g_assert_false (e2ee_replay_window_fresh (&back, high - 65));
  g_assert_false (e2ee_replay_window_fresh (&back, 5000 + 7500));
  g_assert_true (e2ee_replay_window_fresh (&back, high - 64));
  g_assert_true (e2ee_replay_window_fresh (&back, high + 1));
  /* Dense counters: the bitmap marks what was seen. */
  init = FALSE;
  e2ee_replay_window_load (&w, FALSE, 0, 0);
  for (guint64 c = 100; c < 200; c += 2)
    e2ee_replay_window_record (&w, c, &init, &high, &bitmap);
  e2ee_replay_window_load (&back, init, high, bitmap);
  for (guint64 c = 135; c < 200; c++)
    g_assert_cmpint (e2ee_replay_window_fresh (&back, c), ==, (c % 2) == 1);
  g_assert_false (e2ee_replay_window_fresh (&back, 133));
  /* All 64 bits set plus high: the oldest falls out on load, and with it
   * everything below. */
  e2ee_replay_window_load (&back, TRUE, 1000, G_MAXUINT64);
  g_assert_false (e2ee_replay_window_fresh (&back, 936));
  g_assert_false (e2ee_replay_window_fresh (&back, 999));
  g_assert_true (e2ee_replay_window_fresh (&back, 1001));
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/envelope/roundtrip-one", test_roundtrip_one);
  g_test_add_func ("/envelope/roundtrip-three", test_roundtrip_three);
  g_test_add_func ("/envelope/max-recipients", test_max_recipients);
  g_test_add_func ("/envelope/empty-and-large", test_empty_and_large);
  g_test_add_func ("/envelope/seal-rejects", test_seal_rejects);
  g_test_add_func ("/envelope/caps-nibble", test_caps_nibble);
  g_test_add_func ("/envelope/counter-max", test_counter_max);
  g_test_add_func ("/envelope/padding", test_padding);
  g_test_add_func ("/envelope/padding-random", test_padding_random);
  g_test_add_func ("/envelope/bad-padding-inside-tag", test_bad_padding_inside_tag);
  g_test_add_func ("/envelope/tamper-one", test_tamper_one);
  g_test_add_func ("/envelope/tamper-three", test_tamper_three);
  g_test_add_func ("/envelope/truncation", test_truncation);
  g_test_add_func ("/envelope/parse-version-caps", test_parse_version_caps);
  g_test_add_func ("/envelope/parse-flags-count", test_parse_flags_count);
  g_test_add_func ("/envelope/parse-every-count", test_parse_every_count);
  g_test_add_func ("/envelope/parse-too-large", test_parse_too_large);
  g_test_add_func ("/envelope/corecipient-reencrypt", test_corecipient_reencrypt);
  g_test_add_func ("/envelope/corecipient-same-tag", test_corecipient_same_tag);
  g_test_add_func ("/envelope/commitment-mismatch", test_commitment_mismatch);
  g_test_add_func ("/envelope/fixed-iv", test_fixed_iv_deterministic);
  g_test_add_func ("/envelope/armor", test_armor);
  g_test_add_func ("/envelope/armor-noncanonical", test_armor_noncanonical);
  g_test_add_func ("/envelope/replay-window", test_replay_window);
  return g_test_run ();
}
