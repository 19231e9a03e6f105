/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-envelope.h"
#include "e2ee-error.h"
#include "e2ee-wipe.h"

/* Layout (PROTOCOL.md §5):
 *   0  version << 4 | caps        1
 *   1  flags << 5 | (n - 1)       1  (flags: bit 0 padded, bits 1-2 reserved)
 *   2  sender id                  4
 *   6  counter                    5  (big-endian)
 *  11  ids                        4n
 *      iv           12
 *      commitment   32   only when n >= 2
 *      wrapped keys 48n  only when n >= 2 (key 32 || tag 16; AAD =
 *                        header || body ciphertext || body tag)
 *      ciphertext || tag 16
 * With one recipient the body is sealed directly under K(sender->recipient);
 * with more, under a fresh message key wrapped for each. */

#define FIXED_LEN 11
#define COUNT_BITS 5
#define COUNT_MASK 0x1Fu
#define COMMIT_LEN 32
#define WRAP_LEN (E2EE_AEAD_KEY_LEN + E2EE_AEAD_TAG_LEN)
#define MAX_PAD_EXTRA_BLOCKS 3
#define COMMIT_LABEL "purple-e2ee/v1 key commitment"

struct _E2eeEnvelope {
  GBytes *bytes;
  const guint8 *data;
  gsize len;
  guint n;
  gsize header_len;        /* through the IV (and commitment) */
  gsize wraps_off;
  gsize body_off;
  gsize body_len;          /* ciphertext without tag */
};

static gsize
header_len_for (guint n)
{
  return FIXED_LEN + E2EE_DEVICE_ID_LEN * n + E2EE_AEAD_IV_LEN + (n >= 2 ? COMMIT_LEN : 0);
}

/* SHA-256(label || message key), all 256 bits: a shorter commitment would
 * let a sender who can afford 2^(bits/2) work find two message keys that
 * open one body to two texts.  FALSE (and E2EE_ERROR_CRYPTO) only when
 * libgcrypt cannot give a hash context, e.g. out of secure memory. */
static gboolean
key_commitment (const guint8 mk[E2EE_AEAD_KEY_LEN], guint8 out[COMMIT_LEN], GError **error)
{
  gcry_md_hd_t md = NULL;
  gcry_error_t err;
  const unsigned char *digest;

  err = gcry_md_open (&md, GCRY_MD_SHA256, GCRY_MD_FLAG_SECURE);
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO,
                   "SHA-256 set-up failed: %s", gcry_strerror (err));
      return FALSE;
    }
  gcry_md_write (md, COMMIT_LABEL, strlen (COMMIT_LABEL));
  gcry_md_write (md, mk, E2EE_AEAD_KEY_LEN);
  digest = gcry_md_read (md, GCRY_MD_SHA256);
  if (digest == NULL)
    {
      gcry_md_close (md);
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "SHA-256 failed");
      return FALSE;
    }
  memcpy (out, digest, COMMIT_LEN);
  gcry_md_close (md); /* wipes the context */
  return TRUE;
}

/* Uses @cached when the caller keeps a keyed handle, else a one-off one. */
static gboolean
seal_with (const guint8 key[E2EE_AEAD_KEY_LEN], E2eeAead *cached, const guint8 *iv,
           const guint8 *aad, gsize aad_len, const guint8 *in, gsize len,
           guint8 *out, guint8 *tag, GError **error)
{
  E2eeAead *aead = cached ? cached : e2ee_aead_new (key, error);
  gboolean ok;

  if (!aead)
    return FALSE;
  ok = e2ee_aead_seal (aead, iv, aad, aad_len, in, len, out, tag, error);
  if (aead != cached)
    e2ee_aead_free (aead);
  return ok;
}

/* ISO/IEC 7816-4 padding: 0x80 then zeros, up to a multiple of @block,
 * plus 0..3 whole extra blocks so equal lengths do not always match. */
static gsize
padded_length (gsize len, gsize block, gsize extra)
{
  return ((len + 1 + block - 1) / block) * block + extra * block;
}

#define COUNTER_EPOCH_UNIX G_GINT64_CONSTANT (1577836800)
#define COUNTER_TICKS_PER_SECOND 100

guint64
e2ee_envelope_clock_counter (void)
{
  gint64 ticks = g_get_real_time () / (G_USEC_PER_SEC / COUNTER_TICKS_PER_SECOND)
                 - COUNTER_EPOCH_UNIX * COUNTER_TICKS_PER_SECOND;

  return (guint64) MAX (ticks, 0);
}

gboolean
e2ee_envelope_next_counter (guint64 *last, guint64 *counter, GError **error)
{
  guint64 clock = e2ee_envelope_clock_counter ();
  guint64 base = *last <= E2EE_ENVELOPE_COUNTER_MAX ? *last : 0;

  if (clock > E2EE_ENVELOPE_COUNTER_MAX)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CLOCK,
                           "the system clock is wrong (beyond the year 2368): "
                           "nothing was sent");
      return FALSE;
    }
  /* At the end of the range only an earlier clock jump can have brought
   * us: once the clock is below it again, the clock is all there is to go
   * on; until then nothing can be sent. */
  if (base == E2EE_ENVELOPE_COUNTER_MAX && clock >= base)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_CLOCK,
                           "the envelope counter is exhausted after a clock jump; "
                           "correct the system clock: nothing was sent");
      return FALSE;
    }
  *counter = base == E2EE_ENVELOPE_COUNTER_MAX ? clock : MAX (clock, base + 1);
  *last = *counter;
  return TRUE;
}

GBytes *
e2ee_envelope_seal (const E2eeSealParams *p, const guint8 *plaintext, gsize len,
                    GError **error)
{
  guint n = p->n_recipients;
  gsize body_len = len, hlen, total, off;
  guint8 *out = NULL, *body = NULL;
  guint8 *mk = NULL;
  const guint8 *body_key;
  E2eeAead *body_aead = NULL;
  gboolean padded = p->pad_block > 0;
  GBytes *result = NULL;

  g_return_val_if_fail (p != NULL && (plaintext != NULL || len == 0), NULL);
  if (n == 0 || n > E2EE_ENVELOPE_MAX_RECIPIENTS)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_RECIPIENTS,
                   "an envelope needs 1 to %d recipients", E2EE_ENVELOPE_MAX_RECIPIENTS);
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++)
      if (memcmp (p->recipients[i].id, p->recipients[j].id, E2EE_DEVICE_ID_LEN) == 0)
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_RECIPIENTS,
                               "two recipients share a device id");
          return NULL;
        }
  if (len > E2EE_ENVELOPE_MAX_PLAINTEXT)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TOO_LARGE,
                   "the message is longer than %d bytes", E2EE_ENVELOPE_MAX_PLAINTEXT);
      return NULL;
    }
  if (p->counter > E2EE_ENVELOPE_COUNTER_MAX || !(p->caps & E2EE_CAPS_V1)
      || (p->caps & ~E2EE_CAPS_MASK))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS,
                           "counter out of range or capabilities without v1");
      return NULL;
    }
  if (padded)
    {
      gsize extra = p->fixed_iv ? p->fixed_pad_blocks : 0;
      if (!p->fixed_iv)
        {
          guint8 r;
          gcry_create_nonce (&r, 1);
          extra = r % (MAX_PAD_EXTRA_BLOCKS + 1);
        }
      if (p->pad_block > 1024 || extra > MAX_PAD_EXTRA_BLOCKS)
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS,
                               "padding block too large");
          return NULL;
        }
      body_len = padded_length (len, p->pad_block, extra);
    }

  hlen = header_len_for (n);
  total = hlen + (n >= 2 ? WRAP_LEN * n : 0) + body_len + E2EE_AEAD_TAG_LEN;
  out = g_malloc0 (total);

  /* Fixed header. */
  /* Two packed bytes keep a one-recipient envelope small on IRC. */
  out[0] = (guint8) (E2EE_ENVELOPE_VERSION << 4 | p->caps);
  out[1] = (guint8) ((padded ? E2EE_ENVELOPE_FLAG_PADDED : 0) << COUNT_BITS | (n - 1));
  memcpy (out + 2, p->sender_id, E2EE_DEVICE_ID_LEN);
  for (int i = 0; i < 5; i++)
    out[6 + i] = (guint8) (p->counter >> (8 * (4 - i)));
  off = FIXED_LEN;
  for (guint i = 0; i < n; i++, off += E2EE_DEVICE_ID_LEN)
    memcpy (out + off, p->recipients[i].id, E2EE_DEVICE_ID_LEN);
  if (p->fixed_iv)
    memcpy (out + off, p->fixed_iv, E2EE_AEAD_IV_LEN);
  else
    e2ee_aead_random_iv (out + off);
  const guint8 *iv = out + off;
  off += E2EE_AEAD_IV_LEN;

  if (n == 1)
    {
      body_key = p->recipients[0].key;
      body_aead = p->recipients[0].aead;
    }
  else
    {
      mk = e2ee_secure_alloc (E2EE_AEAD_KEY_LEN);
      if (p->fixed_message_key)
        memcpy (mk, p->fixed_message_key, E2EE_AEAD_KEY_LEN);
      else
        e2ee_random_key (mk, E2EE_AEAD_KEY_LEN);
      if (!key_commitment (mk, out + off, error))
        goto out;
      body_key = mk;
    }
  g_assert (off + (n >= 2 ? COMMIT_LEN : 0) == hlen);

  /* Body: AAD is the whole header through the IV and commitment. */
  body = e2ee_secret_alloc (body_len);
  if (len)
    memcpy (body, plaintext, len);
  if (padded)
    body[len] = 0x80;
  {
    guint8 *body_out = out + total - E2EE_AEAD_TAG_LEN - body_len;
    guint8 *tag = out + total - E2EE_AEAD_TAG_LEN;

    if (!seal_with (body_key, body_aead, iv, out, hlen, body, body_len, body_out, tag, error))
      goto out;

    /* Each wrap authenticates the header and the whole body (ciphertext
     * and tag), so that one recipient, who knows the message key, cannot
     * pass a different body off to another recipient as the sender's.
     * The body's tag alone would not do: whoever knows the message key
     * can change the ciphertext and keep the GCM tag. */
    if (n >= 2)
      {
        gsize aad_len = hlen + body_len + E2EE_AEAD_TAG_LEN;
        guint8 *aad = g_malloc (aad_len);
        gboolean ok = TRUE;

        memcpy (aad, out, hlen);
        memcpy (aad + hlen, body_out, body_len + E2EE_AEAD_TAG_LEN);
        for (guint i = 0; ok && i < n; i++)
          {
            guint8 *wrap = out + hlen + WRAP_LEN * i;
            ok = seal_with (p->recipients[i].key, p->recipients[i].aead, iv, aad, aad_len, mk,
                            E2EE_AEAD_KEY_LEN, wrap, wrap + E2EE_AEAD_KEY_LEN, error);
          }
        g_free (aad);
        if (!ok)
          goto out;
      }
  }
  result = g_bytes_new_take (out, total);
  out = NULL;

out:
  e2ee_secret_free (body, body_len);
  e2ee_secure_free (mk, E2EE_AEAD_KEY_LEN);
  g_free (out);
  return result;
}

E2eeEnvelope *
e2ee_envelope_parse (const guint8 *data, gsize len, GError **error)
{
  E2eeEnvelope *env;
  guint n;
  gsize hlen, min;

  if (len < FIXED_LEN)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TRUNCATED,
                           "envelope shorter than its fixed header");
      return NULL;
    }
  if (data[0] >> 4 != E2EE_ENVELOPE_VERSION)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_VERSION,
                   "unsupported envelope version %u", data[0] >> 4);
      return NULL;
    }
  if (!(data[0] & E2EE_CAPS_V1) || ((data[1] >> COUNT_BITS) & ~E2EE_ENVELOPE_FLAG_PADDED))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_FLAGS,
                           "envelope capabilities lack v1 or reserved flags are set");
      return NULL;
    }
  /* n is stored as n - 1 in five bits, so 1..32 is all it can say. */
  n = (data[1] & COUNT_MASK) + 1;
  hlen = header_len_for (n);
  min = hlen + (n >= 2 ? WRAP_LEN * n : 0) + E2EE_AEAD_TAG_LEN;
  if (len < min)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TRUNCATED,
                           "envelope shorter than its header says");
      return NULL;
    }
  if (len - min > E2EE_ENVELOPE_MAX_PLAINTEXT + (MAX_PAD_EXTRA_BLOCKS + 1) * 1024 + 1)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TOO_LARGE,
                           "envelope larger than the message size limit");
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++)
      if (memcmp (data + FIXED_LEN + 4 * i, data + FIXED_LEN + 4 * j, 4) == 0)
        {
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_RECIPIENTS,
                               "envelope lists a recipient twice");
          return NULL;
        }

  env = g_new0 (E2eeEnvelope, 1);
  env->bytes = g_bytes_new (data, len);
  env->data = g_bytes_get_data (env->bytes, NULL);
  env->len = len;
  env->n = n;
  env->header_len = hlen;
  env->wraps_off = hlen;
  env->body_off = hlen + (n >= 2 ? WRAP_LEN * n : 0);
  env->body_len = len - env->body_off - E2EE_AEAD_TAG_LEN;
  return env;
}

void
e2ee_envelope_free (E2eeEnvelope *env)
{
  if (env == NULL)
    return;
  g_bytes_unref (env->bytes);
  g_free (env);
}

guint8 e2ee_envelope_get_version (const E2eeEnvelope *env) { return env->data[0] >> 4; }
guint8 e2ee_envelope_get_caps (const E2eeEnvelope *env) { return env->data[0] & E2EE_CAPS_MASK; }
guint8 e2ee_envelope_get_flags (const E2eeEnvelope *env) { return env->data[1] >> COUNT_BITS; }
const guint8 *e2ee_envelope_get_sender_id (const E2eeEnvelope *env) { return env->data + 2; }
guint e2ee_envelope_get_n_recipients (const E2eeEnvelope *env) { return env->n; }

guint64
e2ee_envelope_get_counter (const E2eeEnvelope *env)
{
  guint64 v = 0;
  for (int i = 0; i < 5; i++)
    v = v << 8 | env->data[6 + i];
  return v;
}

const guint8 *
e2ee_envelope_get_recipient_id (const E2eeEnvelope *env, guint index)
{
  g_return_val_if_fail (index < env->n, NULL);
  return env->data + FIXED_LEN + E2EE_DEVICE_ID_LEN * index;
}

gint
e2ee_envelope_find_recipient (const E2eeEnvelope *env, const guint8 id[E2EE_DEVICE_ID_LEN])
{
  for (guint i = 0; i < env->n; i++)
    if (memcmp (e2ee_envelope_get_recipient_id (env, i), id, E2EE_DEVICE_ID_LEN) == 0)
      return (gint) i;
  return -1;
}

static gboolean
open_with (const guint8 key[E2EE_AEAD_KEY_LEN], E2eeAead *cached, const guint8 *iv,
           const guint8 *aad, gsize aad_len, const guint8 *in, gsize len,
           const guint8 *tag, guint8 *out, GError **error)
{
  E2eeAead *aead = cached ? cached : e2ee_aead_new (key, error);
  gboolean ok;

  if (!aead)
    return FALSE;
  ok = e2ee_aead_open (aead, iv, aad, aad_len, in, len, tag, out, error);
  if (aead != cached)
    e2ee_aead_free (aead);
  return ok;
}

static gboolean
envelope_open (const E2eeEnvelope *env, guint index,
               const guint8 key[E2EE_AEAD_KEY_LEN], E2eeAead *aead,
               guint8 **plaintext, gsize *len, GError **error)
{
  const guint8 *iv = env->data + FIXED_LEN + E2EE_DEVICE_ID_LEN * env->n;
  const guint8 *body = env->data + env->body_off;
  const guint8 *tag = body + env->body_len;
  guint8 *mk = NULL, *out = NULL;
  const guint8 *body_key = key;
  E2eeAead *body_aead = aead;
  gsize plain_len = env->body_len;
  gboolean ok = FALSE;

  g_return_val_if_fail (index < env->n && plaintext != NULL && len != NULL, FALSE);
  *plaintext = NULL;
  *len = 0;

  if (env->n >= 2)
    {
      const guint8 *wrap = env->data + env->wraps_off + WRAP_LEN * index;
      /* AAD: header || body ciphertext || body tag (see the seal side). */
      gsize aad_len = env->header_len + env->body_len + E2EE_AEAD_TAG_LEN;
      guint8 *aad = g_malloc (aad_len);
      guint8 commit[COMMIT_LEN];

      memcpy (aad, env->data, env->header_len);
      memcpy (aad + env->header_len, body, env->body_len + E2EE_AEAD_TAG_LEN);
      mk = e2ee_secure_alloc (E2EE_AEAD_KEY_LEN);
      ok = open_with (key, aead, iv, aad, aad_len,
                      wrap, E2EE_AEAD_KEY_LEN, wrap + E2EE_AEAD_KEY_LEN, mk, error);
      g_free (aad);
      if (!ok)
        goto out;
      /* The commitment binds the body to one message key, so a sender
       * cannot show different recipients different texts. */
      if (!key_commitment (mk, commit, error))
        {
          ok = FALSE;
          goto out;
        }
      if (!e2ee_ct_equal (commit, iv + E2EE_AEAD_IV_LEN, COMMIT_LEN))
        {
          ok = FALSE;
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_AEAD_TAG,
                               "authentication failed: message key commitment mismatch");
          goto out;
        }
      body_key = mk;
      body_aead = NULL;
    }

  out = e2ee_secret_alloc (env->body_len + 1);
  ok = open_with (body_key, body_aead, iv, env->data, env->header_len, body, env->body_len,
                  tag, out, error);
  if (!ok)
    goto out;

  if (e2ee_envelope_get_flags (env) & E2EE_ENVELOPE_FLAG_PADDED)
    {
      while (plain_len > 0 && out[plain_len - 1] == 0)
        plain_len--;
      if (plain_len == 0 || out[plain_len - 1] != 0x80)
        {
          ok = FALSE;
          g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ENVELOPE_TRAILING,
                               "malformed padding inside an authenticated envelope");
          goto out;
        }
      plain_len--;
      e2ee_wipe (out + plain_len, env->body_len - plain_len);
    }
  out[plain_len] = 0;
  *plaintext = out;
  *len = plain_len;
  out = NULL;

out:
  e2ee_secure_free (mk, E2EE_AEAD_KEY_LEN);
  e2ee_secret_free (out, env->body_len + 1);
  return ok;
}

gboolean
e2ee_envelope_open (const E2eeEnvelope *env, guint index,
                    const guint8 key[E2EE_AEAD_KEY_LEN],
                    guint8 **plaintext, gsize *len, GError **error)
{
  g_return_val_if_fail (key != NULL, FALSE);
  return envelope_open (env, index, key, NULL, plaintext, len, error);
}

gboolean
e2ee_envelope_open_aead (const E2eeEnvelope *env, guint index, E2eeAead *aead,
                         guint8 **plaintext, gsize *len, GError **error)
{
  g_return_val_if_fail (aead != NULL, FALSE);
  return envelope_open (env, index, NULL, aead, plaintext, len, error);
}

/* ---- armor ------------------------------------------------------------ */

char *
e2ee_armor_encode (GBytes *envelope)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (envelope, &len);
  g_autofree char *b64 = e2ee_b64url_encode (data, len);

  return g_strconcat (E2EE_ARMOR_PREFIX, b64, NULL);
}

gboolean
e2ee_armor_detect (const char *text)
{
  while (text && g_ascii_isspace (*text))
    text++;
  return text && g_str_has_prefix (text, E2EE_ARMOR_PREFIX);
}

GBytes *
e2ee_armor_decode (const char *text, GError **error)
{
  const char *start = text, *end;
  guint8 *raw;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  while (g_ascii_isspace (*start))
    start++;
  if (!g_str_has_prefix (start, E2EE_ARMOR_PREFIX))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_ARMOR,
                           "not an armored purple-e2ee envelope");
      return NULL;
    }
  start += strlen (E2EE_ARMOR_PREFIX);
  end = start + strlen (start);
  while (end > start && g_ascii_isspace (end[-1]))
    end--;
  raw = e2ee_b64url_decode (start, (gsize) (end - start), &len, &local);
  if (raw == NULL)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_ARMOR, "armored envelope: %s",
                   local->message);
      return NULL;
    }
  return g_bytes_new_take (raw, len);
}
