/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-envelope-v2.h"
#include "e2ee-error.h"
#include "e2ee-random.h"
#include "e2ee-wipe.h"

#define BODY_AAD_LEN (2 + sizeof E2EE_ENVELOPE_V2_BODY_LABEL - 1)

static inline guint32
get_u32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static gboolean
fail (GError **error, int code, const char *what)
{
  g_set_error_literal (error, E2EE_ERROR, code, what);
  return FALSE;
}

gboolean
e2ee_envelope_v2_is_v2 (const guint8 *data, gsize len)
{
  return data != NULL && len >= 1
         && (data[0] & ~(E2EE_ENVELOPE_V2_MULTI | E2EE_ENVELOPE_V2_PADDED)) == E2EE_ENVELOPE_V2_BASE;
}

/* ISO/IEC 7816-4 padding (as v1): 0x80 then zeros up to a multiple of
 * @block, plus @extra whole blocks so equal lengths do not always match. */
static gsize
padded_length (gsize len, gsize block, gsize extra)
{
  return ((len + 1 + block - 1) / block) * block + extra * block;
}

/* SHA-256("PE2E v2 body hash" || bytes [0, @len)): what every slot
 * carries next to MK, so that a recipient, who learns MK, cannot hand
 * the others a body of its own (it cannot seal their slots). */
static gboolean
body_hash (const guint8 *data, gsize len, guint8 out[32], GError **error)
{
  gcry_buffer_t iov[2] = { 0 };
  gcry_error_t err;

  iov[0].data = (void *) E2EE_ENVELOPE_V2_HASH_LABEL;
  iov[0].len = strlen (E2EE_ENVELOPE_V2_HASH_LABEL);
  iov[1].data = (void *) data;
  iov[1].len = len;
  err = gcry_md_hash_buffers (GCRY_MD_SHA256, 0, out, iov, 2);
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "SHA-256 failed: %s",
                   gcry_strerror (err));
      return FALSE;
    }
  return TRUE;
}

static void
body_aad (const guint8 *head, guint8 aad[BODY_AAD_LEN])
{
  aad[0] = head[0];
  aad[1] = head[1];
  memcpy (aad + 2, E2EE_ENVELOPE_V2_BODY_LABEL, BODY_AAD_LEN - 2);
}

/* ---- sealing ---------------------------------------------------------- */

/* The body plaintext: the text, padded if asked.  Draws the extra block
 * count first (one byte from the nonce generator, mod 4) and leaves out
 * the extra blocks that would pass the limit, so only the text's own
 * length decides whether it fits. */
static guint8 *
make_body (const char *text, gsize pad_block, gsize *body_len, GError **error)
{
  gsize len = strlen (text), total = len;
  guint8 *body;

  if (pad_block > 0)
    {
      guint8 r = 0;
      gsize extra;

      if (padded_length (len, pad_block, 0) > E2EE_V2_MAX_PLAINTEXT)
        goto too_large;
      e2ee_random_bytes (&r, 1, E2EE_RANDOM_NONCE);
      extra = r % (E2EE_ENVELOPE_V2_MAX_EXTRA_BLOCKS + 1);
      extra = MIN (extra, (E2EE_V2_MAX_PLAINTEXT - padded_length (len, pad_block, 0)) / pad_block);
      total = padded_length (len, pad_block, extra);
    }
  else if (len > E2EE_V2_MAX_PLAINTEXT)
    goto too_large;
  body = e2ee_secret_alloc (total);
  memcpy (body, text, len);
  if (pad_block > 0)
    body[len] = 0x80;
  *body_len = total;
  return body;

too_large:
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE,
               "the text is too large for a v2 envelope (%d bytes after padding)",
               E2EE_V2_MAX_PLAINTEXT);
  return NULL;
}

static GBytes *
seal_single (E2eeRatchet *session, guint8 flag, const guint8 *body, gsize body_len,
             GError **error)
{
  g_autoptr (GBytes) msg = e2ee_ratchet_seal (session, body, body_len, error);
  gsize mlen;
  const guint8 *m;
  guint8 *out;

  if (msg == NULL)
    return NULL;
  m = g_bytes_get_data (msg, &mlen);
  out = g_malloc (1 + mlen);
  out[0] = flag;
  memcpy (out + 1, m, mlen);
  return g_bytes_new_take (out, 1 + mlen);
}

static GBytes *
seal_multi (E2eeRatchet **sessions, guint n, guint8 flag, const guint8 *body, gsize body_len,
            GError **error)
{
  gsize head_len = E2EE_ENVELOPE_V2_MULTI_HEAD + body_len + E2EE_AEAD_TAG_LEN;
  GByteArray *out = g_byte_array_sized_new (head_len + n * (2 + E2EE_V2_OVERHEAD_MAX
                                                            + E2EE_ENVELOPE_V2_SLOT_PLAINTEXT));
  guint8 *mk = e2ee_secure_alloc (E2EE_AEAD_KEY_LEN);
  guint8 slot_pt[E2EE_ENVELOPE_V2_SLOT_PLAINTEXT], aad[BODY_AAD_LEN];
  guint8 *head;
  E2eeAead *aead = NULL;
  gboolean ok = FALSE;

  g_byte_array_set_size (out, head_len);
  head = out->data;
  head[0] = flag;
  head[1] = (guint8) n;
  e2ee_random_bytes (mk, E2EE_AEAD_KEY_LEN, E2EE_RANDOM_KEY);
  e2ee_random_bytes (head + 2, E2EE_AEAD_IV_LEN, E2EE_RANDOM_NONCE);
  for (int i = 0; i < 4; i++)
    head[2 + E2EE_AEAD_IV_LEN + i] = (guint8) (body_len >> (24 - 8 * i));
  body_aad (head, aad);
  aead = e2ee_aead_new (mk, error);
  if (aead == NULL
      || !e2ee_aead_seal (aead, head + 2, aad, sizeof aad, body, body_len,
                          head + E2EE_ENVELOPE_V2_MULTI_HEAD,
                          head + E2EE_ENVELOPE_V2_MULTI_HEAD + body_len, error))
    goto out;
  memcpy (slot_pt, mk, E2EE_AEAD_KEY_LEN);
  if (!body_hash (head, head_len, slot_pt + E2EE_AEAD_KEY_LEN, error))
    goto out;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GBytes) msg = e2ee_ratchet_seal (sessions[i], slot_pt, sizeof slot_pt, error);
      const guint8 *m;
      gsize mlen;
      guint8 len_be[2];

      if (msg == NULL)
        goto out;
      m = g_bytes_get_data (msg, &mlen);
      /* A receiver refuses slots from different sender devices. */
      if (i > 0 && memcmp (m + 3, out->data + head_len + 2 + 3, 4) != 0)
        {
          fail (error, E2EE_ERROR_V2_ENVELOPE,
                "the sessions of one envelope must share our device tag");
          goto out;
        }
      g_assert (mlen <= G_MAXUINT16);
      len_be[0] = (guint8) (mlen >> 8);
      len_be[1] = (guint8) mlen;
      g_byte_array_append (out, len_be, 2);
      g_byte_array_append (out, m, (guint) mlen);
    }
  ok = TRUE;

out:
  e2ee_aead_free (aead);
  e2ee_secure_free (mk, E2EE_AEAD_KEY_LEN);
  e2ee_wipe (slot_pt, sizeof slot_pt);
  if (!ok)
    {
      g_byte_array_unref (out);
      return NULL;
    }
  return g_byte_array_free_to_bytes (out);
}

GBytes *
e2ee_envelope_v2_seal (E2eeRatchet **sessions, guint n, const char *text, gsize pad_block,
                       GError **error)
{
  guint8 flag = E2EE_ENVELOPE_V2_BASE;
  guint8 *body;
  gsize body_len = 0;
  GBytes *result;

  g_return_val_if_fail (text != NULL && (sessions != NULL || n == 0), NULL);
  if (n == 0 || n > E2EE_ENVELOPE_V2_MAX_SLOTS)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE,
                   "a v2 envelope has 1 to %d recipient devices", E2EE_ENVELOPE_V2_MAX_SLOTS);
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      if (sessions[i] == NULL)
        {
          fail (error, E2EE_ERROR_V2_ENVELOPE, "a recipient device without a session");
          return NULL;
        }
      /* One session twice would seal two slots of one chain: a caller bug. */
      for (guint j = 0; j < i; j++)
        if (sessions[j] == sessions[i])
          {
            fail (error, E2EE_ERROR_V2_ENVELOPE, "a session is given twice");
            return NULL;
          }
    }
  if (!g_utf8_validate (text, -1, NULL))
    {
      fail (error, E2EE_ERROR_V2_ENVELOPE, "the text is not valid UTF-8");
      return NULL;
    }
  if (pad_block > E2EE_ENVELOPE_V2_MAX_PAD_BLOCK)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE,
                   "padding block above %d bytes", E2EE_ENVELOPE_V2_MAX_PAD_BLOCK);
      return NULL;
    }
  body = make_body (text, pad_block, &body_len, error);
  if (body == NULL)
    return NULL;
  if (pad_block > 0)
    flag |= E2EE_ENVELOPE_V2_PADDED;
  if (n == 1)
    result = seal_single (sessions[0], flag, body, body_len, error);
  else
    result = seal_multi (sessions, n, flag | E2EE_ENVELOPE_V2_MULTI, body, body_len, error);
  e2ee_secret_free (body, body_len);
  return result;
}

/* ---- parsing ---------------------------------------------------------- */

/* One ratchet message, parsed strictly; @pt_len is the plaintext length
 * it must carry, or -1 for any. */
static gboolean
parse_slot (const guint8 *m, gsize len, gssize pt_len, E2eeEnvelopeV2Slot *slot,
            gsize *ct_len_out, GError **error)
{
  E2eeV2Message msg;
  g_autoptr (GError) local = NULL;
  gsize ct_len;

  if (!e2ee_v2_message_parse (m, len, &msg, &local))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_ENVELOPE, "v2 envelope slot: %s",
                   local->message);
      return FALSE;
    }
  slot->recipient_device = msg.recipient_device;
  slot->sender_device = msg.sender_device;
  slot->type = msg.type;
  slot->message = m;
  slot->message_len = len;
  ct_len = msg.ciphertext_len;
  e2ee_v2_message_clear (&msg);
  if (ct_len_out)
    *ct_len_out = ct_len;
  if (pt_len >= 0 && ct_len != (gsize) pt_len)
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope slot of the wrong size");
  return TRUE;
}

gboolean
e2ee_envelope_v2_parse (const guint8 *data, gsize len, E2eeEnvelopeV2 *out, GError **error)
{
  gsize off, body_end;
  guint n;

  g_return_val_if_fail (out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (!e2ee_envelope_v2_is_v2 (data, len))
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "not a v2 envelope");
  out->data = data;
  out->len = len;
  out->multi = (data[0] & E2EE_ENVELOPE_V2_MULTI) != 0;
  out->padded = (data[0] & E2EE_ENVELOPE_V2_PADDED) != 0;

  if (!out->multi)
    {
      gsize ct_len = 0;

      if (!parse_slot (data + 1, len - 1, -1, &out->slots[0], &ct_len, error))
        return FALSE;
      /* A padded body holds at least its 0x80. */
      if (out->padded && ct_len == 0)
        return fail (error, E2EE_ERROR_V2_ENVELOPE, "padded v2 envelope without a body");
      out->n_slots = 1;
      out->sender_device = out->slots[0].sender_device;
      return TRUE;
    }

  if (len < E2EE_ENVELOPE_V2_MULTI_HEAD + E2EE_AEAD_TAG_LEN)
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope shorter than its header");
  n = data[1];
  if (n < 2 || n > E2EE_ENVELOPE_V2_MAX_SLOTS)
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope recipient count not in 2..32");
  out->iv = data + 2;
  out->body_len = get_u32 (data + 2 + E2EE_AEAD_IV_LEN);
  if (out->body_len > E2EE_V2_MAX_PLAINTEXT || (out->padded && out->body_len == 0))
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope body length out of range");
  body_end = E2EE_ENVELOPE_V2_MULTI_HEAD + out->body_len + E2EE_AEAD_TAG_LEN;
  if (len < body_end)
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope shorter than its body");
  out->body = data + E2EE_ENVELOPE_V2_MULTI_HEAD;
  off = body_end;
  for (guint i = 0; i < n; i++)
    {
      gsize mlen;

      if (len - off < 2)
        return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope shorter than its slots");
      mlen = (gsize) data[off] << 8 | data[off + 1];
      off += 2;
      if (len - off < mlen)
        return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope slot truncated");
      if (!parse_slot (data + off, mlen, E2EE_ENVELOPE_V2_SLOT_PLAINTEXT, &out->slots[i], NULL, error))
        return FALSE;
      if (i > 0 && out->slots[i].sender_device != out->slots[0].sender_device)
        return fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope slots from different devices");
      off += mlen;
    }
  if (off != len)
    return fail (error, E2EE_ERROR_V2_ENVELOPE, "trailing bytes after the v2 envelope");
  out->n_slots = n;
  out->sender_device = out->slots[0].sender_device;
  return TRUE;
}

void
e2ee_envelope_v2_clear (E2eeEnvelopeV2 *env)
{
  if (env != NULL)
    memset (env, 0, sizeof *env);
}

/* ---- opening ---------------------------------------------------------- */

/* The body of a multi envelope from the slot's MK || hash, into a new
 * secret buffer of env->body_len + 1 bytes. */
static guint8 *
open_body (const E2eeEnvelopeV2 *env, const guint8 *slot_pt, GError **error)
{
  gsize body_end = E2EE_ENVELOPE_V2_MULTI_HEAD + env->body_len + E2EE_AEAD_TAG_LEN;
  guint8 hash[32], aad[BODY_AAD_LEN];
  g_autoptr (E2eeAead) aead = NULL;
  guint8 *out;

  if (!body_hash (env->data, body_end, hash, error))
    return NULL;
  /* The hash is compared before the body is opened, in constant time:
   * it is what tells the sender's body from one a co-recipient made. */
  if (!e2ee_ct_equal (hash, slot_pt + E2EE_AEAD_KEY_LEN, sizeof hash))
    {
      fail (error, E2EE_ERROR_V2_ENVELOPE, "the v2 envelope body is not the one its sender sealed");
      return NULL;
    }
  aead = e2ee_aead_new (slot_pt, error);
  if (aead == NULL)
    return NULL;
  body_aad (env->data, aad);
  out = e2ee_secret_alloc (env->body_len + 1);
  if (!e2ee_aead_open (aead, env->iv, aad, sizeof aad, env->body, env->body_len,
                       env->body + env->body_len, out, NULL))
    {
      e2ee_secret_free (out, env->body_len + 1);
      fail (error, E2EE_ERROR_V2_ENVELOPE, "the v2 envelope body does not open");
      return NULL;
    }
  return out;
}

/* The text of an opened body: unpadded, checked, as a new string. */
static char *
body_text (const guint8 *body, gsize len, gboolean padded, GError **error)
{
  char *text;

  if (padded)
    {
      while (len > 0 && body[len - 1] == 0)
        len--;
      if (len == 0 || body[len - 1] != 0x80)
        {
          fail (error, E2EE_ERROR_ENVELOPE_TRAILING,
                "malformed padding inside an authenticated v2 envelope");
          return NULL;
        }
      len--;
    }
  if (memchr (body, '\0', len) != NULL || !g_utf8_validate ((const char *) body, (gssize) len, NULL))
    {
      fail (error, E2EE_ERROR_ENVELOPE_TRAILING, "an encrypted message is not valid UTF-8 text");
      return NULL;
    }
  text = (char *) e2ee_secret_alloc (len + 1);
  memcpy (text, body, len);
  text[len] = '\0';
  return text;
}

char *
e2ee_envelope_v2_open (const E2eeEnvelopeV2 *env, guint slot, E2eeRatchet **session,
                       guint64 now, E2eeRatchetOpened *info, GError **error)
{
  const E2eeEnvelopeV2Slot *s;
  E2eeRatchet *copy;
  GBytes *blob;
  E2eeRatchetOpened opened = { 0 };
  GBytes *pt;
  const guint8 *p;
  gsize pt_len;
  char *text = NULL;

  g_return_val_if_fail (env != NULL && session != NULL && *session != NULL, NULL);
  g_return_val_if_fail (slot < env->n_slots, NULL);
  s = &env->slots[slot];

  /* Everything happens on a copy: the ratchet would keep its step once
   * its message authenticates, even when the body then fails. */
  blob = e2ee_ratchet_serialize (*session);
  copy = e2ee_ratchet_deserialize (g_bytes_get_data (blob, NULL), g_bytes_get_size (blob),
                                   error);
  e2ee_bytes_free (blob);
  if (copy == NULL)
    return NULL;
  pt = e2ee_ratchet_open (copy, s->message, s->message_len, now, &opened, error);
  if (pt == NULL)
    {
      e2ee_ratchet_free (copy);
      return NULL;
    }
  p = g_bytes_get_data (pt, &pt_len);
  if (env->multi)
    {
      guint8 *body = NULL;

      if (pt_len != E2EE_ENVELOPE_V2_SLOT_PLAINTEXT)
        fail (error, E2EE_ERROR_V2_ENVELOPE, "v2 envelope slot of the wrong size");
      else if ((body = open_body (env, p, error)) != NULL)
        text = body_text (body, env->body_len, env->padded, error);
      e2ee_secret_free (body, env->body_len + 1);
    }
  else
    text = body_text (p, pt_len, env->padded, error);
  e2ee_bytes_free (pt);
  if (text == NULL)
    {
      e2ee_ratchet_free (copy);
      return NULL;
    }
  e2ee_ratchet_free (*session);
  *session = copy;
  if (info)
    *info = opened;
  return text;
}
