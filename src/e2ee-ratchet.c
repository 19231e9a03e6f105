/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-gcrypt.h"
#include "e2ee-kdf.h"
#include "e2ee-random.h"
#include "e2ee-ratchet-private.h"
#include "e2ee-wipe.h"

#define ROOT_INFO "PE2E v2 root"
#define MSG_INFO "PE2E v2 msg"

/* ---- primitives ------------------------------------------------------ */

/* KDF_RK: RK' || CK = HKDF-SHA256(salt = RK, IKM = dh_out, "PE2E v2 root", 64). */
static gboolean
kdf_rk (const guint8 rk[32], const guint8 dh_out[32], guint8 rk_out[32],
        guint8 ck_out[32], GError **error)
{
  guint8 okm[64];

  if (!e2ee_hkdf_sha256 (rk, 32, dh_out, 32, (const guint8 *) ROOT_INFO,
                         sizeof ROOT_INFO - 1, okm, sizeof okm, error))
    return FALSE;
  memcpy (rk_out, okm, 32);
  memcpy (ck_out, okm + 32, 32);
  e2ee_wipe (okm, sizeof okm);
  e2ee_key_log ("rk", rk_out, 32);
  e2ee_key_log ("ck", ck_out, 32);
  return TRUE;
}

/* KDF_CK: MK = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02), on one handle. */
static gboolean
kdf_ck (gcry_mac_hd_t hd, guint8 ck[32], guint8 mk[32], GError **error)
{
  static const guint8 one = 0x01, two = 0x02;
  guint8 next[32];
  size_t l1 = 32, l2 = 32;
  gcry_error_t err;

  err = gcry_mac_setkey (hd, ck, 32);
  if (!err)
    err = gcry_mac_write (hd, &one, 1);
  if (!err)
    err = gcry_mac_read (hd, mk, &l1);
  if (!err)
    err = gcry_mac_reset (hd);
  if (!err)
    err = gcry_mac_write (hd, &two, 1);
  if (!err)
    err = gcry_mac_read (hd, next, &l2);
  if (!err)
    err = gcry_mac_reset (hd);
  if (err || l1 != 32 || l2 != 32)
    {
      e2ee_wipe (next, sizeof next);
      e2ee_wipe (mk, 32);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "HMAC-SHA256 failed: %s",
                   gcry_strerror (err));
      return FALSE;
    }
  memcpy (ck, next, 32);
  e2ee_wipe (next, sizeof next);
  e2ee_key_log ("mk", mk, 32);
  e2ee_key_log ("ck", ck, 32);
  return TRUE;
}

static gcry_mac_hd_t
mac_open (GError **error)
{
  gcry_mac_hd_t hd = NULL;
  gcry_error_t err;

  if (!e2ee_gcrypt_init (error))
    return NULL;
  err = gcry_mac_open (&hd, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL);
  if (err)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "HMAC set-up failed: %s",
                   gcry_strerror (err));
      return NULL;
    }
  return hd;
}

/* K = HKDF(salt = none, MK, "PE2E v2 msg", 32), on the caller's HMAC
 * handle (opening one polls for entropy): PRK = HMAC(0^32, MK),
 * K = HMAC(PRK, "PE2E v2 msg" || 0x01). */
static gboolean
msg_key (gcry_mac_hd_t hd, const guint8 mk[32], guint8 key[32], GError **error)
{
  static const guint8 zero[32] = { 0 }, one = 0x01;
  guint8 prk[32];
  size_t l1 = 32, l2 = 32;
  gcry_error_t err;

  err = gcry_mac_setkey (hd, zero, sizeof zero);
  if (!err)
    err = gcry_mac_write (hd, mk, 32);
  if (!err)
    err = gcry_mac_read (hd, prk, &l1);
  if (!err)
    err = gcry_mac_setkey (hd, prk, sizeof prk);
  if (!err)
    err = gcry_mac_write (hd, MSG_INFO, sizeof MSG_INFO - 1);
  if (!err)
    err = gcry_mac_write (hd, &one, 1);
  if (!err)
    err = gcry_mac_read (hd, key, &l2);
  if (!err)
    err = gcry_mac_reset (hd);
  e2ee_wipe (prk, sizeof prk);
  if (err || l1 != 32 || l2 != 32)
    {
      e2ee_wipe (key, 32);
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_CRYPTO, "HKDF-SHA256 failed: %s",
                   gcry_strerror (err));
      return FALSE;
    }
  return TRUE;
}

/* AES-256-GCM under the message key of @mk; the AAD is sid || header (IV
 * included). */
static gboolean
aead_run (gcry_mac_hd_t hd, gboolean seal, const guint8 mk[32], const guint8 sid[32],
          const guint8 *header, gsize header_len, const guint8 *iv,
          const guint8 *in, gsize len, guint8 *out, guint8 *tag, GError **error)
{
  guint8 key[32];
  guint8 aad[32 + E2EE_V2_HEADER_MAX];
  E2eeAead *aead;
  gboolean ok = FALSE;

  g_assert (header_len <= E2EE_V2_HEADER_MAX);
  if (!msg_key (hd, mk, key, error))
    {
      if (!seal)
        e2ee_wipe (out, len);
      return FALSE;
    }
  memcpy (aad, sid, 32);
  memcpy (aad + 32, header, header_len);
  if ((aead = e2ee_aead_new (key, error)))
    {
      ok = seal ? e2ee_aead_seal (aead, iv, aad, 32 + header_len, in, len, out, tag, error)
                : e2ee_aead_open (aead, iv, aad, 32 + header_len, in, len, tag, out, error);
      e2ee_aead_free (aead);
    }
  e2ee_wipe (key, sizeof key);
  return ok;
}

/* ---- construction ---------------------------------------------------- */

E2eeRatchet *
e2ee_ratchet_alloc (void)
{
  return g_new0 (E2eeRatchet, 1);
}

void
e2ee_ratchet_free (E2eeRatchet *s)
{
  if (s == NULL)
    return;
  e2ee_ratchet_skipped_clear (s);
  e2ee_ec_secret_free (s->dhs);
  e2ee_wipe (s, sizeof *s);
  g_free (s);
}

E2eeRatchet *
e2ee_ratchet_new_initiator (const E2eeX3dhResult *x3dh, E2eeEcSecret *ephemeral,
                            const E2eeKey *initiator, guint8 versions,
                            guint32 local_device, guint32 remote_device)
{
  E2eeRatchet *s = e2ee_ratchet_alloc ();

  s->flags = E2EE_RATCHET_F_INITIATOR | E2EE_RATCHET_F_START | E2EE_RATCHET_F_HAVE_CKS;
  if (x3dh->mode == E2EE_X3DH_MODE_NO_PREKEY)
    s->flags |= E2EE_RATCHET_F_WEAK;
  memcpy (s->sid, x3dh->sid, 32);
  memcpy (s->rk, x3dh->root, 32);
  memcpy (s->cks, x3dh->chain, 32);
  s->local_device = local_device;
  s->remote_device = remote_device;
  s->dhs = ephemeral;
  s->start.mode = x3dh->mode;
  e2ee_ec_point_encode (initiator, s->start.initiator);
  s->start.spk_id = x3dh->spk_id;
  s->start.versions = versions;
  return s;
}

E2eeRatchet *
e2ee_ratchet_new_responder (const E2eeX3dhResult *x3dh, const E2eeKey *ephemeral,
                            guint32 local_device, guint32 remote_device)
{
  E2eeRatchet *s = e2ee_ratchet_alloc ();

  s->flags = E2EE_RATCHET_F_HAVE_CKR | E2EE_RATCHET_F_NEED_DHS;
  if (x3dh->mode == E2EE_X3DH_MODE_NO_PREKEY)
    s->flags |= E2EE_RATCHET_F_WEAK;
  memcpy (s->sid, x3dh->sid, 32);
  memcpy (s->rk, x3dh->root, 32);
  memcpy (s->ckr, x3dh->chain, 32);
  s->local_device = local_device;
  s->remote_device = remote_device;
  s->chains[0].serial = 0;
  e2ee_ec_point_encode (ephemeral, s->chains[0].dh);
  s->n_chains = 1;
  s->next_serial = 1;
  return s;
}

/* ---- sending --------------------------------------------------------- */

/* The deferred half of a DH ratchet step: a new ratchet key and sending
 * chain.  Changes the state only on success. */
static gboolean
sending_step (E2eeRatchet *s, GError **error)
{
  g_autoptr (E2eeKey) dhr = NULL;
  E2eeEcSecret *fresh = NULL;
  guint8 dh[32], rk[32], ck[32];
  gboolean ok;

  if (s->n_chains == 0 || !(s->flags & E2EE_RATCHET_F_HAVE_CKR))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_STATE,
                           "no ratchet key of the peer to answer");
      return FALSE;
    }
  if (!(dhr = e2ee_ec_point_decode (s->chains[s->n_chains - 1].dh, error)))
    return FALSE;
  ok = (fresh = e2ee_ec_secret_generate (error)) != NULL
       && e2ee_ec_secret_ecdh (fresh, dhr, dh, error)
       && kdf_rk (s->rk, dh, rk, ck, error);
  if (ok)
    {
      e2ee_ec_secret_free (s->dhs);
      s->dhs = fresh;
      memcpy (s->rk, rk, 32);
      memcpy (s->cks, ck, 32);
      s->pn = s->ns;
      s->ns = 0;
      s->flags |= E2EE_RATCHET_F_HAVE_CKS;
      s->flags &= ~E2EE_RATCHET_F_NEED_DHS;
    }
  else
    e2ee_ec_secret_free (fresh);
  e2ee_wipe (dh, sizeof dh);
  e2ee_wipe (rk, sizeof rk);
  e2ee_wipe (ck, sizeof ck);
  return ok;
}

gboolean
e2ee_ratchet_prepare (E2eeRatchet *s, GError **error)
{
  return !(s->flags & E2EE_RATCHET_F_NEED_DHS) || sending_step (s, error);
}

gboolean
e2ee_ratchet_key_due (const E2eeRatchet *s)
{
  return (s->flags & E2EE_RATCHET_F_NEED_DHS) != 0;
}

GBytes *
e2ee_ratchet_seal (E2eeRatchet *s, const guint8 *plaintext, gsize len, GError **error)
{
  gcry_mac_hd_t hd;
  guint8 mk[32], dh[E2EE_EC_POINT_LEN];
  guint8 *out;
  gsize hlen, total;
  guint32 n;
  gboolean ok;

  if (len > E2EE_V2_MAX_PLAINTEXT)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_FORMAT,
                   "a v2 message holds at most %d bytes", E2EE_V2_MAX_PLAINTEXT);
      return NULL;
    }
  if ((s->flags & E2EE_RATCHET_F_NEED_DHS) && !sending_step (s, error))
    return NULL;
  if (!(s->flags & E2EE_RATCHET_F_HAVE_CKS) || s->dhs == NULL || s->ns == G_MAXUINT32)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_STATE,
                           "no usable sending chain");
      return NULL;
    }
  if (!(hd = mac_open (error)))
    return NULL;
  if (!kdf_ck (hd, s->cks, mk, error))
    {
      gcry_mac_close (hd);
      return NULL;
    }
  /* The chain has moved on: from here a failure loses this number only. */
  n = s->ns++;
  s->recv_since_send = 0;

  e2ee_ec_point_encode (e2ee_ec_secret_get_public (s->dhs), dh);
  total = E2EE_V2_HEADER_MAX + len + E2EE_AEAD_TAG_LEN;
  out = g_malloc (total);
  hlen = e2ee_v2_header_write (out, s->local_device, s->remote_device, dh, s->pn, n,
                               (s->flags & E2EE_RATCHET_F_START) ? &s->start : NULL);
  e2ee_random_bytes (out + hlen, E2EE_AEAD_IV_LEN, E2EE_RANDOM_NONCE);
  hlen += E2EE_AEAD_IV_LEN;
  ok = aead_run (hd, TRUE, mk, s->sid, out, hlen, out + hlen - E2EE_AEAD_IV_LEN,
                 plaintext, len, out + hlen, out + hlen + len, error);
  gcry_mac_close (hd);
  e2ee_wipe (mk, sizeof mk);
  if (!ok)
    {
      g_free (out);
      return NULL;
    }
  return g_bytes_new_take (g_realloc (out, hlen + len + E2EE_AEAD_TAG_LEN),
                           hlen + len + E2EE_AEAD_TAG_LEN);
}

/* ---- receiving ------------------------------------------------------- */

void
e2ee_ratchet_expire (E2eeRatchet *s, guint64 now)
{
  for (guint i = s->n_skipped; i-- > 0;)
    {
      E2eeRatchetSkipped *e = &s->skipped[i];
      if (now >= e->time && now - e->time >= E2EE_RATCHET_MAX_AGE)
        e2ee_ratchet_skipped_remove (s, i);
    }
}

/* Keys derived while opening, before they may be committed. */
typedef struct {
  E2eeRatchetSkipped *items;
  guint len, cap;
} Pending;

/* Derives the keys [from, to) of a chain into @pending (a copy: the state
 * is not touched) and leaves @ck at key @to. */
static gboolean
skip_keys (gcry_mac_hd_t hd, guint8 ck[32], guint32 serial, guint32 from, guint32 to,
           guint64 now, Pending *pending, GError **error)
{
  for (guint32 i = from; i < to; i++)
    {
      E2eeRatchetSkipped *e = &pending->items[pending->len];
      g_assert (pending->len < pending->cap);
      e->serial = serial;
      e->n = i;
      e->time = now;
      if (!kdf_ck (hd, ck, e->mk, error))
        return FALSE;
      pending->len++;
    }
  return TRUE;
}

static gboolean
fail (GError **error, E2eeErrorCode code, const char *why)
{
  g_set_error_literal (error, E2EE_ERROR, code, why);
  return FALSE;
}

/* Commits the working values of a successful receipt. */
static void
commit (E2eeRatchet *s, const Pending *pending, guint64 now)
{
  /* Oldest out first, so the store never holds more than the cap. */
  while (s->n_skipped > 0 && s->n_skipped + pending->len > E2EE_RATCHET_MAX_SKIPPED)
    e2ee_ratchet_skipped_remove (s, 0);
  e2ee_ratchet_skipped_add (s, pending->items, MIN (pending->len, E2EE_RATCHET_MAX_SKIPPED));
  while (s->n_skipped > E2EE_RATCHET_MAX_SKIPPED)
    e2ee_ratchet_skipped_remove (s, 0);
  e2ee_ratchet_expire (s, now);
  s->recv_since_send++;
}

static void
push_chain (E2eeRatchet *s, const guint8 dh[E2EE_EC_POINT_LEN])
{
  if (s->n_chains == E2EE_RATCHET_MAX_CHAINS)
    {
      guint32 gone = s->chains[0].serial;
      for (guint i = s->n_skipped; i-- > 0;)
        if (s->skipped[i].serial == gone)
          e2ee_ratchet_skipped_remove (s, i);
      memmove (s->chains, s->chains + 1, (s->n_chains - 1) * sizeof s->chains[0]);
      s->n_chains--;
    }
  s->chains[s->n_chains].serial = s->next_serial++;
  memcpy (s->chains[s->n_chains].dh, dh, E2EE_EC_POINT_LEN);
  s->n_chains++;
}

/* Decrypts @m into @pt; on success the state has taken the message in. */
static gboolean
receive (E2eeRatchet *s, const E2eeV2Message *m, guint64 now, guint8 *pt,
         E2eeRatchetOpened *info, GError **error)
{
  gboolean have_ckr = (s->flags & E2EE_RATCHET_F_HAVE_CKR) != 0;
  gboolean current = FALSE;
  gint chain = -1;
  guint32 serial;
  guint8 ck[32], rk[32], mk[32], dh[32];
  gcry_mac_hd_t hd = NULL;
  Pending pending = { NULL, 0, 0 };
  gboolean ok = FALSE;

  for (guint i = 0; i < s->n_chains; i++)
    if (memcmp (s->chains[i].dh, m->dh, E2EE_EC_POINT_LEN) == 0)
      chain = (gint) i;
  current = chain >= 0 && (guint) chain == s->n_chains - 1 && have_ckr;
  if (chain >= 0)
    {
      serial = s->chains[chain].serial;
      for (guint i = 0; i < s->n_skipped; i++)
        {
          E2eeRatchetSkipped *e = &s->skipped[i];
          gboolean opened;

          if (e->serial != serial || e->n != m->n
              || (now >= e->time && now - e->time >= E2EE_RATCHET_MAX_AGE))
            continue;
          if (!(hd = mac_open (error)))
            return FALSE;
          opened = aead_run (hd, FALSE, e->mk, s->sid, m->header, m->header_len, m->iv,
                             m->ciphertext, m->ciphertext_len, pt, (guint8 *) m->tag, error);
          gcry_mac_close (hd);
          if (!opened)
            return FALSE;
          e2ee_ratchet_skipped_remove (s, i);
          s->recv_since_send++;
          info->skipped = TRUE;
          info->weak = (s->flags & E2EE_RATCHET_F_WEAK) && serial == 0
                       && !(s->flags & E2EE_RATCHET_F_INITIATOR);
          return TRUE;
        }
      if (!current || m->n < s->nr)
        return fail (error, E2EE_ERROR_V2_DUPLICATE, "message already received");
    }
  else if (s->dhs == NULL)
    return fail (error, E2EE_ERROR_V2_START, "a new ratchet key before we have sent: "
                 "not this session");
  if (current && m->n - s->nr > E2EE_RATCHET_MAX_SKIP)
    return fail (error, E2EE_ERROR_V2_SKIP_LIMIT, "message number beyond the skip bound");
  if (!current && (m->n > E2EE_RATCHET_MAX_SKIP
                   || (have_ckr && m->pn > s->nr && m->pn - s->nr > E2EE_RATCHET_MAX_SKIP)))
    return fail (error, E2EE_ERROR_V2_SKIP_LIMIT, "message number beyond the skip bound");

  if (!(hd = mac_open (error)))
    return FALSE;
  /* At most 2 * E2EE_RATCHET_MAX_SKIP keys (checked above). */
  pending.cap = current ? m->n - s->nr
                        : m->n + ((have_ckr && m->pn > s->nr) ? m->pn - s->nr : 0);
  pending.items = (E2eeRatchetSkipped *) e2ee_secret_alloc (MAX (pending.cap, 1u) * sizeof *pending.items);
  memcpy (ck, s->ckr, 32);
  memcpy (rk, s->rk, 32);
  if (current)
    {
      serial = s->chains[s->n_chains - 1].serial;
      ok = skip_keys (hd, ck, serial, s->nr, m->n, now, &pending, error)
           && kdf_ck (hd, ck, mk, error);
    }
  else
    {
      ok = TRUE;
      if (have_ckr && m->pn > s->nr)
        ok = skip_keys (hd, ck, s->chains[s->n_chains - 1].serial, s->nr, m->pn, now,
                        &pending, error);
      serial = s->next_serial;
      ok = ok && e2ee_ec_secret_ecdh (s->dhs, m->dh_key, dh, error)
           && kdf_rk (s->rk, dh, rk, ck, error)
           && skip_keys (hd, ck, serial, 0, m->n, now, &pending, error)
           && kdf_ck (hd, ck, mk, error);
    }
  ok = ok && aead_run (hd, FALSE, mk, s->sid, m->header, m->header_len, m->iv, m->ciphertext,
                       m->ciphertext_len, pt, (guint8 *) m->tag, error);
  if (ok)
    {
      if (!current)
        {
          push_chain (s, m->dh);
          memcpy (s->rk, rk, 32);
          e2ee_wipe (s->cks, 32);
          s->flags |= E2EE_RATCHET_F_HAVE_CKR | E2EE_RATCHET_F_NEED_DHS;
          s->flags &= ~E2EE_RATCHET_F_HAVE_CKS;
          info->new_chain = TRUE;
        }
      memcpy (s->ckr, ck, 32);
      s->nr = m->n + 1;
      if (s->flags & E2EE_RATCHET_F_INITIATOR)
        {
          s->flags |= E2EE_RATCHET_F_REPLIED;
          s->flags &= ~E2EE_RATCHET_F_START;
        }
      commit (s, &pending, now);
      info->weak = (s->flags & E2EE_RATCHET_F_WEAK) && serial == 0
                   && !(s->flags & E2EE_RATCHET_F_INITIATOR);
    }
  gcry_mac_close (hd);
  e2ee_secret_free (pending.items, MAX (pending.cap, 1u) * sizeof *pending.items);
  e2ee_wipe (ck, sizeof ck);
  e2ee_wipe (rk, sizeof rk);
  e2ee_wipe (mk, sizeof mk);
  e2ee_wipe (dh, sizeof dh);
  return ok;
}

GBytes *
e2ee_ratchet_open (E2eeRatchet *s, const guint8 *data, gsize len, guint64 now,
                   E2eeRatchetOpened *info, GError **error)
{
  E2eeV2Message m;
  E2eeRatchetOpened local = { 0 };
  guint8 *pt;
  gboolean ok;

  if (!e2ee_v2_message_parse (data, len, &m, error))
    return NULL;
  if (m.recipient_device != s->local_device || m.sender_device != s->remote_device)
    {
      e2ee_v2_message_clear (&m);
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_DEVICE,
                           "the message is for another device or session");
      return NULL;
    }
  if (m.type == E2EE_V2_TYPE_START && (s->flags & E2EE_RATCHET_F_INITIATOR))
    {
      e2ee_v2_message_clear (&m);
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_V2_START,
                           "the peer started a session of its own");
      return NULL;
    }
  pt = e2ee_secret_alloc (m.ciphertext_len);
  local.n = m.n;
  ok = receive (s, &m, now, pt, &local, error);
  if (!ok)
    {
      e2ee_secret_free (pt, m.ciphertext_len);
      e2ee_v2_message_clear (&m);
      return NULL;
    }
  if (info)
    *info = local;
  len = m.ciphertext_len;
  e2ee_v2_message_clear (&m);
  return g_bytes_new_take (pt, len);
}

/* ---- queries --------------------------------------------------------- */

gboolean
e2ee_ratchet_awaiting_reply (const E2eeRatchet *s)
{
  return (s->flags & E2EE_RATCHET_F_START) != 0;
}

gboolean
e2ee_ratchet_is_weak (const E2eeRatchet *s)
{
  if (!(s->flags & E2EE_RATCHET_F_WEAK))
    return FALSE;
  if (s->flags & E2EE_RATCHET_F_INITIATOR)
    return !(s->flags & E2EE_RATCHET_F_REPLIED);
  return s->n_chains == 1 && s->chains[0].serial == 0;
}

gboolean
e2ee_ratchet_needs_heartbeat (const E2eeRatchet *s)
{
  return s->recv_since_send >= E2EE_RATCHET_HEARTBEAT;
}

guint
e2ee_ratchet_skipped_count (const E2eeRatchet *s)
{
  return s->n_skipped;
}

const guint8 *
e2ee_ratchet_get_sid (const E2eeRatchet *s)
{
  return s->sid;
}
