/* purple-e2ee benchmarks — rows 1-4: per-message cost, first contact,
 * wire overhead and key generation, each next to raw libgcrypt doing
 * the same cryptographic work in the cheapest safe way.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>

#include "bench-e2ee.h"
#include "bench-util.h"
#include "bench-v2.h"
#include "e2ee-aead.h"
#include "e2ee-b64.h"
#include "e2ee-envelope.h"
#include "e2ee-fragment.h"
#include "e2ee-jwk.h"
#include "e2ee-kdf.h"
#include "e2ee-wipe.h"

/* Header bytes an envelope with one recipient authenticates: fixed
 * header (version/caps, flags/count, sender id, counter), one device id,
 * IV.  The raw floor authenticates as many. */
#define ENVELOPE_AAD_LEN (11 + E2EE_DEVICE_ID_LEN + E2EE_AEAD_IV_LEN)

static const gsize msg_sizes[] = { 16, 256, 1024, 65536 };
static const gsize wire_sizes[] = { 2, 16, 256, 1024 };

static void G_GNUC_NORETURN
die (const char *what, GError *error)
{
  fprintf (stderr, "bench: %s failed: %s\n", what, error ? error->message : "(no error)");
  exit (1);
}

static void G_GNUC_NORETURN
die_gcry (const char *what, gcry_error_t err)
{
  fprintf (stderr, "bench: %s failed: %s\n", what, gcry_strerror (err));
  exit (1);
}

static gint64
target_ns (BenchRun *run)
{
  return run->quick ? 10 * 1000 * 1000 : 100 * 1000 * 1000;
}

static guint
reps (BenchRun *run)
{
  return run->quick ? 3 : 11;
}

static void G_GNUC_PRINTF (3, 4)
record_median (BenchRun *run, BenchCase *c, const char *fmt, ...)
{
  char key[96];
  va_list ap;

  va_start (ap, fmt);
  g_vsnprintf (key, sizeof key, fmt, ap);
  va_end (ap);
  bench_record (run, key, bench_median (c->samples, c->n_samples));
}

/* ---- row 1: seal + open ------------------------------------------------ */

/* The floor: one GCM handle, key set once; per message a nonce-generator
 * IV, the same amount of AAD as an envelope header, seal, then open with
 * the tag checked. */
typedef struct {
  gcry_cipher_hd_t hd;
  guint8 aad[ENVELOPE_AAD_LEN];
  guint8 *text, *ct, *back;
  gsize len;
} RawGcm;

static void
raw_gcm_iter (gpointer data, guint iters)
{
  RawGcm *g = data;
  guint8 iv[12], tag[16];
  gcry_error_t err = 0;

  for (guint i = 0; i < iters; i++)
    {
      gcry_create_nonce (iv, sizeof iv);
      err = gcry_cipher_reset (g->hd);
      err = err ? err : gcry_cipher_setiv (g->hd, iv, sizeof iv);
      err = err ? err : gcry_cipher_authenticate (g->hd, g->aad, sizeof g->aad);
      err = err ? err : gcry_cipher_encrypt (g->hd, g->ct, g->len, g->text, g->len);
      err = err ? err : gcry_cipher_gettag (g->hd, tag, sizeof tag);
      err = err ? err : gcry_cipher_reset (g->hd);
      err = err ? err : gcry_cipher_setiv (g->hd, iv, sizeof iv);
      err = err ? err : gcry_cipher_authenticate (g->hd, g->aad, sizeof g->aad);
      err = err ? err : gcry_cipher_decrypt (g->hd, g->back, g->len, g->ct, g->len);
      err = err ? err : gcry_cipher_checktag (g->hd, tag, sizeof tag);
      if (err)
        die_gcry ("raw AES-256-GCM", err);
    }
}

static void
raw_gcm_init (RawGcm *g, gsize len)
{
  guint8 key[32];
  gcry_error_t err;

  memset (g, 0, sizeof *g);
  g->len = len;
  g->text = g_malloc (len);
  g->ct = g_malloc (len);
  g->back = g_malloc (len);
  bench_fill_text ((char *) g->text, len);
  gcry_create_nonce (g->aad, sizeof g->aad);
  gcry_randomize (key, sizeof key, GCRY_STRONG_RANDOM);
  /* Same flags as the library's handle: key schedule in secure memory. */
  err = gcry_cipher_open (&g->hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM,
                          GCRY_CIPHER_SECURE);
  err = err ? err : gcry_cipher_setkey (g->hd, key, sizeof key);
  if (err)
    die_gcry ("gcry_cipher_open", err);
  e2ee_wipe (key, sizeof key);
}

static void
raw_gcm_clear (RawGcm *g)
{
  gcry_cipher_close (g->hd);
  g_free (g->text);
  g_free (g->ct);
  g_free (g->back);
}

/* Ours, exactly as the session uses the envelope API for an established
 * session: a cached direction key K(A->B), a counter, one recipient;
 * the receiver parses, finds itself and opens. */
typedef struct {
  guint8 key[E2EE_KEY_LEN];
  E2eeRecipient rcpt;
  E2eeSealParams params;
  E2eeAead *recv_aead;   /* the receiving side's kept handle */
  char *text;
  gsize len;
} EnvBench;

static void
envelope_iter (gpointer data, guint iters)
{
  EnvBench *e = data;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      GBytes *sealed;
      E2eeEnvelope *env;
      const guint8 *raw;
      gsize raw_len, plain_len = 0;
      guint8 *plain = NULL;
      gint idx;

      e->params.counter++;
      sealed = e2ee_envelope_seal (&e->params, (const guint8 *) e->text, e->len, &error);
      if (sealed == NULL)
        die ("e2ee_envelope_seal", error);
      raw = g_bytes_get_data (sealed, &raw_len);
      env = e2ee_envelope_parse (raw, raw_len, &error);
      if (env == NULL)
        die ("e2ee_envelope_parse", error);
      idx = e2ee_envelope_find_recipient (env, e->rcpt.id);
      if (idx < 0 || !e2ee_envelope_open_aead (env, (guint) idx, e->recv_aead, &plain,
                                                &plain_len, &error))
        die ("e2ee_envelope_open", error);
      if (plain_len != e->len)
        die ("e2ee_envelope_open length", NULL);
      e2ee_secret_free (plain, plain_len + 1);
      e2ee_envelope_free (env);
      g_bytes_unref (sealed);
    }
}

static void
envelope_init (EnvBench *e, gsize len)
{
  memset (e, 0, sizeof *e);
  e->len = len;
  e->text = g_malloc (len + 1);
  bench_fill_text (e->text, len);
  e->text[len] = '\0';
  e2ee_random_key (e->key, sizeof e->key);
  gcry_create_nonce (e->rcpt.id, sizeof e->rcpt.id);
  e->rcpt.key = e->key;
  /* An established session keeps one keyed handle per direction key on
   * each side (as src/e2ee-session.c does). */
  e->rcpt.aead = e2ee_aead_new (e->key, NULL);
  e->recv_aead = e2ee_aead_new (e->key, NULL);
  e->params.caps = E2EE_CAPS_SUPPORTED;
  gcry_create_nonce (e->params.sender_id, sizeof e->params.sender_id);
  e->params.counter = 0;
  e->params.recipients = &e->rcpt;
  e->params.n_recipients = 1;
}

static void
envelope_clear (EnvBench *e)
{
  e2ee_wipe (e->key, sizeof e->key);
  e2ee_aead_free (e->rcpt.aead);
  e2ee_aead_free (e->recv_aead);
  g_free (e->text);
}

/* Our AEAD layer with one handle kept across messages: what the envelope
 * costs once the per-message handle set-up is gone. */
typedef struct {
  E2eeAead *aead;
  guint8 aad[ENVELOPE_AAD_LEN];
  guint8 *text, *ct, *back;
  gsize len;
} AeadBench;

static void
aead_iter (gpointer data, guint iters)
{
  AeadBench *a = data;
  GError *error = NULL;
  guint8 iv[E2EE_AEAD_IV_LEN], tag[E2EE_AEAD_TAG_LEN];

  for (guint i = 0; i < iters; i++)
    {
      e2ee_aead_random_iv (iv);
      if (!e2ee_aead_seal (a->aead, iv, a->aad, sizeof a->aad, a->text, a->len,
                           a->ct, tag, &error))
        die ("e2ee_aead_seal", error);
      if (!e2ee_aead_open (a->aead, iv, a->aad, sizeof a->aad, a->ct, a->len, tag,
                           a->back, &error))
        die ("e2ee_aead_open", error);
    }
}

static void
aead_init (AeadBench *a, gsize len)
{
  guint8 key[E2EE_AEAD_KEY_LEN];
  GError *error = NULL;

  memset (a, 0, sizeof *a);
  a->len = len;
  a->text = g_malloc (len);
  a->ct = g_malloc (len);
  a->back = g_malloc (len);
  bench_fill_text ((char *) a->text, len);
  gcry_create_nonce (a->aad, sizeof a->aad);
  e2ee_random_key (key, sizeof key);
  a->aead = e2ee_aead_new (key, &error);
  e2ee_wipe (key, sizeof key);
  if (a->aead == NULL)
    die ("e2ee_aead_new", error);
}

static void
aead_clear (AeadBench *a)
{
  e2ee_aead_free (a->aead);
  g_free (a->text);
  g_free (a->ct);
  g_free (a->back);
}

void
bench_rows_message (BenchRun *run)
{
  for (guint s = 0; s < G_N_ELEMENTS (msg_sizes); s++)
    {
      RawGcm raw;
      EnvBench env;
      AeadBench aead;
      BenchCase cases[3] = {
        { "raw", raw_gcm_iter, &raw, 0, NULL, 0 },
        { "envelope", envelope_iter, &env, 0, NULL, 0 },
        { "aead", aead_iter, &aead, 0, NULL, 0 },
      };

      raw_gcm_init (&raw, msg_sizes[s]);
      envelope_init (&env, msg_sizes[s]);
      aead_init (&aead, msg_sizes[s]);
      bench_run_interleaved (cases, G_N_ELEMENTS (cases), reps (run), target_ns (run));
      record_median (run, &cases[0], "raw.gcm.%zu.ns", msg_sizes[s]);
      record_median (run, &cases[1], "ours.envelope.%zu.ns", msg_sizes[s]);
      record_median (run, &cases[2], "ours.aead.%zu.ns", msg_sizes[s]);
      for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
        bench_case_clear (&cases[i]);
      raw_gcm_clear (&raw);
      envelope_clear (&env);
      aead_clear (&aead);
    }
}

/* ---- row 2: first contact ---------------------------------------------- */

static gcry_mpi_t
mpi_from (const guint8 *buf, gsize len)
{
  gcry_mpi_t m = NULL;
  gcry_error_t err = gcry_mpi_scan (&m, GCRYMPI_FMT_USG, buf, len, NULL);

  if (err)
    die_gcry ("gcry_mpi_scan", err);
  return m;
}

static void
mpi_to_32 (gcry_mpi_t m, guint8 out[32])
{
  size_t n = 0;
  guint8 buf[32];
  gcry_error_t err = gcry_mpi_print (GCRYMPI_FMT_USG, buf, sizeof buf, &n, m);

  if (err)
    die_gcry ("gcry_mpi_print", err);
  memset (out, 0, 32);
  memcpy (out + 32 - n, buf, n);
}

/* A private scalar chosen by @index, for the constant-time check:
 *   1  3 (two bits long)            2  n-2 (256 bits, dense)
 *   3  2^255 + 1 (256 bits, sparse) 4  a hash, cut to 255 bits
 *   5+ a hash of the index, 256 bits
 * 0 means a freshly generated key. */
static void
scalar_for_index (guint index, guint8 d[32])
{
  static const guint8 n_minus_2[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x4f,
  };
  char label[32];

  memset (d, 0, 32);
  switch (index)
    {
    case 1:
      d[31] = 3;
      break;
    case 2:
      memcpy (d, n_minus_2, 32);
      break;
    case 3:
      d[0] = 0x80;
      d[31] = 1;
      break;
    default:
      g_snprintf (label, sizeof label, "bench scalar %u", index);
      gcry_md_hash_buffer (GCRY_MD_SHA256, d, label, strlen (label));
      /* Below n (whose top byte is 0xff) with the top bit as asked. */
      d[0] = index == 4 ? 0x40 | (d[0] & 0x3f) : 0x80 | (d[0] & 0x7f);
      break;
    }
}

static void
public_for_scalar (const guint8 d[32], guint8 x[32], guint8 y[32])
{
  gcry_ctx_t ctx = NULL;
  gcry_mpi_point_t g, q;
  gcry_mpi_t md = mpi_from (d, 32);
  gcry_mpi_t mx = gcry_mpi_new (0), my = gcry_mpi_new (0);
  gcry_error_t err = gcry_mpi_ec_new (&ctx, NULL, "NIST P-256");

  if (err)
    die_gcry ("gcry_mpi_ec_new", err);
  g = gcry_mpi_ec_get_point ("g", ctx, 1);
  q = gcry_mpi_point_new (0);
  gcry_mpi_ec_mul (q, md, g, ctx);
  if (gcry_mpi_ec_get_affine (mx, my, q, ctx) != 0)
    die ("public key from scalar", NULL);
  mpi_to_32 (mx, x);
  mpi_to_32 (my, y);
  gcry_mpi_point_release (g);
  gcry_mpi_point_release (q);
  gcry_mpi_release (md);
  gcry_mpi_release (mx);
  gcry_mpi_release (my);
  gcry_ctx_release (ctx);
}

/* Our private key for @index, through the strict private-JWK import. */
static E2eeKey *
our_key_for_index (guint index)
{
  guint8 d[32], x[32], y[32];
  g_autofree char *bd = NULL, *bx = NULL, *by = NULL;
  char *json;
  E2eeKey *key;
  GError *error = NULL;

  if (index == 0)
    {
      key = e2ee_key_generate (&error);
      if (key == NULL)
        die ("e2ee_key_generate", error);
      return key;
    }
  scalar_for_index (index, d);
  public_for_scalar (d, x, y);
  bd = e2ee_b64url_encode (d, 32);
  bx = e2ee_b64url_encode (x, 32);
  by = e2ee_b64url_encode (y, 32);
  json = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"%s\"}",
                          bx, by, bd);
  key = e2ee_key_from_jwk (json, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
  e2ee_string_free (json);
  e2ee_wipe (d, sizeof d);
  e2ee_wipe (bd, strlen (bd));
  if (key == NULL)
    die ("private JWK import", error);
  return key;
}

/* A fixed peer (same for every key index, so only our key varies). */
static E2eeKey *
peer_key (void)
{
  return our_key_for_index (1000);
}

/* The reference: P-256 ECDH through gcry_pk_decrypt, the scalar a
 * secure MPI (libgcrypt then takes its double-and-add-always path) or,
 * for comparison, an ordinary one. */
typedef struct {
  gcry_sexp_t skey;
  guint8 peer_point[65];
  guint8 shared[32];
} RawEcdh;

static void
raw_ecdh_iter (gpointer data, guint iters)
{
  RawEcdh *r = data;

  for (guint i = 0; i < iters; i++)
    {
      gcry_sexp_t in = NULL, out = NULL, value = NULL;
      const char *buf;
      size_t n = 0;
      gcry_error_t err;

      err = gcry_sexp_build (&in, NULL, "(enc-val(ecdh(e%b)))",
                             (int) sizeof r->peer_point, r->peer_point);
      err = err ? err : gcry_pk_decrypt (&out, in, r->skey);
      if (err)
        die_gcry ("gcry_pk_decrypt (ECDH)", err);
      value = gcry_sexp_find_token (out, "value", 0);
      buf = value ? gcry_sexp_nth_data (value, 1, &n) : NULL;
      if (buf == NULL || n != 65 || buf[0] != 0x04)
        die ("ECDH result", NULL);
      memcpy (r->shared, buf + 1, 32);
      gcry_sexp_release (value);
      gcry_sexp_release (out);
      gcry_sexp_release (in);
    }
}

static void
raw_ecdh_init (RawEcdh *r, guint index, gboolean secure, const E2eeKey *peer)
{
  guint8 d[32], x[32], y[32], q[65];
  gcry_mpi_t md;
  gcry_error_t err;

  memset (r, 0, sizeof *r);
  if (index == 0)
    gcry_randomize (d, 32, GCRY_STRONG_RANDOM), d[0] = 0x80 | (d[0] & 0x7f);
  else
    scalar_for_index (index, d);
  public_for_scalar (d, x, y);
  q[0] = 0x04;
  memcpy (q + 1, x, 32);
  memcpy (q + 33, y, 32);
  md = mpi_from (d, 32);
  if (secure)
    gcry_mpi_set_flag (md, GCRYMPI_FLAG_SECURE);
  err = gcry_sexp_build (&r->skey, NULL,
                         "(private-key(ecc(curve \"NIST P-256\")(q%b)(d%m)))",
                         (int) sizeof q, q, md);
  if (err)
    die_gcry ("gcry_sexp_build (key)", err);
  gcry_mpi_release (md);
  e2ee_wipe (d, sizeof d);
  r->peer_point[0] = 0x04;
  memcpy (r->peer_point + 1, e2ee_key_get_x (peer), 32);
  memcpy (r->peer_point + 33, e2ee_key_get_y (peer), 32);
}

/* The constant-time floor: the scalar a secure MPI handed straight to
 * gcry_mpi_ec_mul (libgcrypt's double-and-add-always ladder), one curve
 * context kept, the peer point rebuilt per operation. */
typedef struct {
  gcry_ctx_t ctx;
  gcry_mpi_t d;
  guint8 peer_x[32], peer_y[32];
  guint8 shared[32];
} RawEcdhCt;

static void
raw_ecdh_ct_iter (gpointer data, guint iters)
{
  RawEcdhCt *r = data;

  for (guint i = 0; i < iters; i++)
    {
      gcry_mpi_t qx = mpi_from (r->peer_x, 32), qy = mpi_from (r->peer_y, 32);
      gcry_mpi_t one = gcry_mpi_set_ui (NULL, 1), sx = gcry_mpi_new (0);
      gcry_mpi_point_t q = gcry_mpi_point_set (NULL, qx, qy, one);
      gcry_mpi_point_t p = gcry_mpi_point_new (0);

      gcry_mpi_ec_mul (p, r->d, q, r->ctx);
      if (gcry_mpi_ec_get_affine (sx, NULL, p, r->ctx) != 0)
        die ("ECDH result", NULL);
      mpi_to_32 (sx, r->shared);
      gcry_mpi_point_release (p);
      gcry_mpi_point_release (q);
      gcry_mpi_release (qx);
      gcry_mpi_release (qy);
      gcry_mpi_release (one);
      gcry_mpi_release (sx);
    }
}

static void
raw_ecdh_ct_init (RawEcdhCt *r, guint index, const E2eeKey *peer)
{
  guint8 d[32];
  gcry_error_t err;

  memset (r, 0, sizeof *r);
  if (index == 0)
    gcry_randomize (d, 32, GCRY_STRONG_RANDOM), d[0] = 0x80 | (d[0] & 0x7f);
  else
    scalar_for_index (index, d);
  err = gcry_mpi_scan (&r->d, GCRYMPI_FMT_USG, d, 32, NULL);
  if (err)
    die_gcry ("gcry_mpi_scan", err);
  gcry_mpi_set_flag (r->d, GCRYMPI_FLAG_SECURE);
  e2ee_wipe (d, sizeof d);
  err = gcry_mpi_ec_new (&r->ctx, NULL, "NIST P-256");
  if (err)
    die_gcry ("gcry_mpi_ec_new", err);
  memcpy (r->peer_x, e2ee_key_get_x (peer), 32);
  memcpy (r->peer_y, e2ee_key_get_y (peer), 32);
}

/* The same scalar plus n or 2n, whichever has exactly 257 bits: the
 * ladder runs over the scalar's bit length, so a fixed length makes its
 * count independent of the key (k*Q = d*Q since n*Q is the identity). */
static void
raw_ecdh_ct_fix_length (RawEcdhCt *r)
{
  gcry_mpi_t n = gcry_mpi_ec_get_mpi ("n", r->ctx, 1);
  gcry_mpi_t k = gcry_mpi_snew (264);

  gcry_mpi_add (k, r->d, n);
  if (gcry_mpi_get_nbits (k) != 257)
    gcry_mpi_add (k, k, n);
  gcry_mpi_release (r->d);
  gcry_mpi_release (n);
  r->d = k;
}

static void
raw_ecdh_ct_clear (RawEcdhCt *r)
{
  gcry_mpi_release (r->d);
  gcry_ctx_release (r->ctx);
}

/* Ours: everything from a buddy's published key to the first envelope
 * on the wire. */
typedef struct {
  E2eeKey *local;
  E2eeKey *remote;         /* the peer, imported once (ECDH-only case) */
  char *peer_jwk;
  guint8 shared[32];
} FirstContact;

static void
first_contact_iter (gpointer data, guint iters)
{
  FirstContact *f = data;
  static const char hello[] = "hello, first msg";   /* 16 bytes */
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      E2eeKey *remote;
      guint8 k_send[E2EE_KEY_LEN], k_recv[E2EE_KEY_LEN];
      E2eeRecipient rcpt = { { 0 }, NULL, NULL };   /* no cached cipher handle */
      E2eeSealParams p = { 0 };
      GBytes *sealed;
      char *armored;

      remote = e2ee_key_from_jwk (f->peer_jwk, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
      if (remote == NULL)
        die ("public JWK import", error);
      if (!e2ee_kdf_pair_keys (f->local, "prpl-bench:local", remote, "prpl-bench:peer",
                               e2ee_key_get_caps (f->local),
                               e2ee_key_get_caps (remote), k_send, k_recv, &error))
        die ("e2ee_kdf_pair_keys", error);
      memcpy (rcpt.id, e2ee_key_get_device_id (remote), E2EE_DEVICE_ID_LEN);
      rcpt.key = k_send;
      p.caps = e2ee_key_get_caps (f->local);
      memcpy (p.sender_id, e2ee_key_get_device_id (f->local), E2EE_DEVICE_ID_LEN);
      p.counter = 1;
      p.recipients = &rcpt;
      p.n_recipients = 1;
      sealed = e2ee_envelope_seal (&p, (const guint8 *) hello, sizeof hello - 1, &error);
      if (sealed == NULL)
        die ("e2ee_envelope_seal", error);
      armored = e2ee_armor_encode (sealed);
      g_free (armored);
      g_bytes_unref (sealed);
      e2ee_wipe (k_send, sizeof k_send);
      e2ee_wipe (k_recv, sizeof k_recv);
      e2ee_key_unref (remote);
    }
}

static void
our_ecdh_iter (gpointer data, guint iters)
{
  FirstContact *f = data;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    if (!e2ee_key_ecdh (f->local, f->remote, f->shared, &error))
      die ("e2ee_key_ecdh", error);
}

static void
first_contact_init (FirstContact *f, guint index)
{
  E2eeKey *peer = peer_key ();

  f->local = our_key_for_index (index);
  f->peer_jwk = e2ee_key_to_jwk (peer, FALSE, TRUE);
  f->remote = e2ee_key_public_copy (peer);
  e2ee_key_unref (peer);
}

static void
first_contact_clear (FirstContact *f)
{
  e2ee_key_unref (f->local);
  e2ee_key_unref (f->remote);
  g_free (f->peer_jwk);
  e2ee_wipe (f->shared, sizeof f->shared);
}

void
bench_rows_first_contact (BenchRun *run)
{
  E2eeKey *peer = peer_key ();
  RawEcdh raw, plain;
  RawEcdhCt ct;
  FirstContact fc;
  /* Each operation is ~0.5 ms: a few dozen per sample are plenty. */
  gint64 target = run->quick ? 20 * 1000 * 1000 : 100 * 1000 * 1000;
  BenchCase cases[5] = {
    { "raw", raw_ecdh_iter, &raw, 0, NULL, 0 },
    { "first", first_contact_iter, &fc, 0, NULL, 0 },
    { "ecdh", our_ecdh_iter, &fc, 0, NULL, 0 },
    { "plain", raw_ecdh_iter, &plain, 0, NULL, 0 },
    { "ct", raw_ecdh_ct_iter, &ct, 0, NULL, 0 },
  };

  raw_ecdh_ct_init (&ct, 0, peer);
  raw_ecdh_init (&raw, 0, TRUE, peer);
  raw_ecdh_init (&plain, 0, FALSE, peer);
  first_contact_init (&fc, 0);
  bench_run_interleaved (cases, G_N_ELEMENTS (cases), reps (run), target);
  record_median (run, &cases[0], "raw.ecdh.ns");
  record_median (run, &cases[1], "ours.first_contact.ns");
  record_median (run, &cases[2], "ours.ecdh.ns");
  record_median (run, &cases[3], "raw.ecdh_plain.ns");
  record_median (run, &cases[4], "raw.ecdh_ct.ns");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    bench_case_clear (&cases[i]);
  gcry_sexp_release (raw.skey);
  gcry_sexp_release (plain.skey);
  raw_ecdh_ct_clear (&ct);
  first_contact_clear (&fc);
  e2ee_key_unref (peer);
}

/* ---- row 3: wire overhead ---------------------------------------------- */

void
bench_rows_wire (BenchRun *run)
{
  for (guint s = 0; s < G_N_ELEMENTS (wire_sizes); s++)
    {
      EnvBench e;
      GBytes *sealed;
      char *armored;
      char **pieces;
      GError *error = NULL;
      char key[64];

      envelope_init (&e, wire_sizes[s]);
      e.params.counter = 1;
      sealed = e2ee_envelope_seal (&e.params, (const guint8 *) e.text, e.len, &error);
      if (sealed == NULL)
        die ("e2ee_envelope_seal", error);
      armored = e2ee_armor_encode (sealed);
      g_snprintf (key, sizeof key, "ours.overhead.%zu.bytes", e.len);
      bench_record (run, key, (double) strlen (armored) - (double) e.len);
      pieces = e2ee_fragment_split (armored, 400, &error);
      if (pieces == NULL)
        die ("e2ee_fragment_split", error);
      g_snprintf (key, sizeof key, "ours.fragments400.%zu.count", e.len);
      bench_record (run, key, (double) g_strv_length (pieces));
      g_strfreev (pieces);
      g_free (armored);
      g_bytes_unref (sealed);
      envelope_clear (&e);
    }
}

/* ---- row 4: identity key generation ------------------------------------ */

static void
our_keygen_iter (gpointer data, guint iters)
{
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      E2eeKey *k = e2ee_key_generate (&error);

      if (k == NULL)
        die ("e2ee_key_generate", error);
      e2ee_key_unref (k);
    }
}

static void
raw_keygen_iter (gpointer data, guint iters)
{
  const char *spec = data;

  for (guint i = 0; i < iters; i++)
    {
      gcry_sexp_t params = NULL, key = NULL;
      gcry_error_t err = gcry_sexp_new (&params, spec, 0, 1);

      err = err ? err : gcry_pk_genkey (&key, params);
      if (err)
        die_gcry ("gcry_pk_genkey", err);
      gcry_sexp_release (key);
      gcry_sexp_release (params);
    }
}

void
bench_rows_keygen (BenchRun *run)
{
  guint n = run->quick ? 3 : 21;
  static char spec[] = "(genkey(ecc(curve \"NIST P-256\")))";

  bench_record (run, "ours.keygen.ns", bench_time_once (our_keygen_iter, NULL, n));
  bench_record (run, "raw.keygen.ns", bench_time_once (raw_keygen_iter, spec, n));
}

/* ---- callgrind targets ------------------------------------------------- */

int
bench_callgrind (const char *what, guint key_index, guint repeat)
{
  BenchFunc fn = NULL;
  gpointer data = NULL;
  RawGcm raw;
  EnvBench env;
  AeadBench aead;
  RawEcdh ecdh;
  RawEcdhCt ct;
  FirstContact fc;
  E2eeKey *peer;

  if (g_str_has_prefix (what, "v2-") || g_str_has_prefix (what, "p256-"))
    return bench_v2_callgrind (what, repeat);
  peer = peer_key ();
  if (strcmp (what, "raw-gcm-1k") == 0)
    raw_gcm_init (&raw, 1024), fn = raw_gcm_iter, data = &raw;
  else if (strcmp (what, "raw-gcm-64k") == 0)
    raw_gcm_init (&raw, 65536), fn = raw_gcm_iter, data = &raw;
  else if (strcmp (what, "envelope-1k") == 0)
    envelope_init (&env, 1024), fn = envelope_iter, data = &env;
  else if (strcmp (what, "aead-1k") == 0)
    aead_init (&aead, 1024), fn = aead_iter, data = &aead;
  else if (strcmp (what, "first-contact") == 0)
    first_contact_init (&fc, key_index), fn = first_contact_iter, data = &fc;
  else if (strcmp (what, "ecdh-ours") == 0)
    first_contact_init (&fc, key_index), fn = our_ecdh_iter, data = &fc;
  else if (strcmp (what, "ecdh-raw") == 0)
    raw_ecdh_init (&ecdh, key_index, TRUE, peer), fn = raw_ecdh_iter, data = &ecdh;
  else if (strcmp (what, "ecdh-raw-plain") == 0)
    raw_ecdh_init (&ecdh, key_index, FALSE, peer), fn = raw_ecdh_iter, data = &ecdh;
  else if (strcmp (what, "ecdh-raw-ct") == 0)
    raw_ecdh_ct_init (&ct, key_index, peer), fn = raw_ecdh_ct_iter, data = &ct;
  else if (strcmp (what, "ecdh-raw-ct257") == 0)
    {
      raw_ecdh_ct_init (&ct, key_index, peer);
      raw_ecdh_ct_fix_length (&ct);
      fn = raw_ecdh_ct_iter, data = &ct;
    }
  else if (strcmp (what, "envelope-64k") == 0)
    envelope_init (&env, 65536), fn = envelope_iter, data = &env;
  else
    {
      fprintf (stderr, "bench: unknown callgrind target %s\n", what);
      return 2;
    }
  /* Warm-up: first-use costs (curve tables, random pool) are not what
   * a steady-state count should show. */
  fn (data, 2);
  bench_cg_run (fn, data, repeat);
  if (fn == our_ecdh_iter || fn == raw_ecdh_iter || fn == raw_ecdh_ct_iter)
    {
      /* Lets the check script confirm that the paths agree on the secret
       * for one key and that different keys gave different secrets. */
      const guint8 *s = fn == our_ecdh_iter ? fc.shared
                        : fn == raw_ecdh_iter ? ecdh.shared : ct.shared;
      printf ("shared-prefix %02x%02x%02x%02x\n", s[0], s[1], s[2], s[3]);
    }
  e2ee_key_unref (peer);
  return 0;
}
