/* purple-e2ee benchmarks — libotr's side of the protocol v2 rows:
 * otrl_message_sending alone (what a sender waits for; libotr writes
 * nothing per message), and the operations its turns and its AKE are made
 * of: a DH-1536 key pair, a DH-1536 session (its shared secret and keys),
 * a DSA-1024 signature and its verification.  Also what libotr does write:
 * its fingerprint file (fopen/fclose, no fsync), after an AKE with a new
 * fingerprint or a trust change, never per message.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <glib/gstdio.h>
#include <libotr/dh.h>
#include <libotr/privkey.h>

#include "bench-otr.h"
#include "bench-util.h"

typedef struct {
  Peer *from;
  char *text;
} SendBench;

static void
send_iter (gpointer data, guint iters)
{
  SendBench *s = data;

  for (guint i = 0; i < iters; i++)
    {
      char *wire = bench_otr_send (s->from, s->text, OTRL_FRAGMENT_SEND_SKIP);

      if (wire == NULL || strncmp (wire, "?OTR:", 5) != 0)
        bench_otr_fail ("message was not encrypted", 0);
      otrl_message_free (wire);
    }
}

typedef struct {
  DH_keypair ours, theirs;
  OtrlPrivKey *priv;
  gcry_sexp_t pub;
  unsigned char hash[20];
  unsigned char *sig;
  size_t sig_len;
  const char *fp_path;
  OtrlUserState us;
} PartBench;

static void
dh_keygen_iter (gpointer data, guint iters)
{
  for (guint i = 0; i < iters; i++)
    {
      DH_keypair kp;
      gcry_error_t err;

      otrl_dh_keypair_init (&kp);
      if ((err = otrl_dh_gen_keypair (DH1536_GROUP_ID, &kp)))
        bench_otr_fail ("otrl_dh_gen_keypair", err);
      otrl_dh_keypair_free (&kp);
    }
}

static void
dh_session_iter (gpointer data, guint iters)
{
  PartBench *p = data;

  for (guint i = 0; i < iters; i++)
    {
      DH_sesskeys sess;
      gcry_error_t err;

      otrl_dh_session_blank (&sess);
      if ((err = otrl_dh_session (&sess, &p->ours, p->theirs.pub)))
        bench_otr_fail ("otrl_dh_session", err);
      otrl_dh_session_free (&sess);
    }
}

static void
dsa_sign_iter (gpointer data, guint iters)
{
  PartBench *p = data;

  for (guint i = 0; i < iters; i++)
    {
      unsigned char *sig = NULL;
      size_t len = 0;
      gcry_error_t err = otrl_privkey_sign (&sig, &len, p->priv, p->hash, sizeof p->hash);

      if (err)
        bench_otr_fail ("otrl_privkey_sign", err);
      free (sig);
    }
}

static void
dsa_verify_iter (gpointer data, guint iters)
{
  PartBench *p = data;

  for (guint i = 0; i < iters; i++)
    {
      gcry_error_t err = otrl_privkey_verify (p->sig, p->sig_len, OTRL_PUBKEY_TYPE_DSA,
                                              p->pub, p->hash, sizeof p->hash);

      if (err)
        bench_otr_fail ("otrl_privkey_verify", err);
    }
}

static void
fpwrite_iter (gpointer data, guint iters)
{
  PartBench *p = data;

  for (guint i = 0; i < iters; i++)
    {
      gcry_error_t err = otrl_privkey_write_fingerprints (p->us, p->fp_path);

      if (err)
        bench_otr_fail ("otrl_privkey_write_fingerprints", err);
    }
}

static gcry_sexp_t dsa_public (gcry_sexp_t privkey);

static void
part_init (PartBench *p, Peer *a, const char *fp_path)
{
  gcry_error_t err;

  memset (p, 0, sizeof *p);
  otrl_dh_keypair_init (&p->ours);
  otrl_dh_keypair_init (&p->theirs);
  if ((err = otrl_dh_gen_keypair (DH1536_GROUP_ID, &p->ours))
      || (err = otrl_dh_gen_keypair (DH1536_GROUP_ID, &p->theirs)))
    bench_otr_fail ("otrl_dh_gen_keypair", err);
  if (!(p->priv = otrl_privkey_find (a->us, a->name, PROTO)))
    bench_otr_fail ("otrl_privkey_find", 0);
  p->pub = dsa_public (p->priv->privkey);
  gcry_create_nonce (p->hash, sizeof p->hash);
  if ((err = otrl_privkey_sign (&p->sig, &p->sig_len, p->priv, p->hash, sizeof p->hash)))
    bench_otr_fail ("otrl_privkey_sign", err);
  p->fp_path = fp_path;
  p->us = a->us;
}

static void
part_clear (PartBench *p)
{
  free (p->sig);
  gcry_sexp_release (p->pub);
  otrl_dh_keypair_free (&p->ours);
  otrl_dh_keypair_free (&p->theirs);
}

/* The public half of a libotr DSA key, as the peer holds it after the
 * AKE: (public-key (dsa p q g y)). */
static gcry_sexp_t
dsa_public (gcry_sexp_t privkey)
{
  static const char *names[4] = { "p", "q", "g", "y" };
  gcry_mpi_t m[4] = { NULL };
  gcry_sexp_t pub = NULL;
  gcry_error_t err;

  for (guint i = 0; i < 4; i++)
    {
      gcry_sexp_t t = gcry_sexp_find_token (privkey, names[i], 0);

      if (t == NULL || (m[i] = gcry_sexp_nth_mpi (t, 1, GCRYMPI_FMT_USG)) == NULL)
        bench_otr_fail ("DSA key component", 0);
      gcry_sexp_release (t);
    }
  err = gcry_sexp_build (&pub, NULL, "(public-key(dsa(p%m)(q%m)(g%m)(y%m)))",
                         m[0], m[1], m[2], m[3]);
  if (err)
    bench_otr_fail ("gcry_sexp_build", err);
  for (guint i = 0; i < 4; i++)
    gcry_mpi_release (m[i]);
  return pub;
}

/* A turn: A sends, B opens, B answers, A opens.  Each side then sees a
 * new DH key of the other and rotates its own. */
static void
turn_iter (gpointer data, guint iters)
{
  BenchOtrMsg *m = data;

  for (guint i = 0; i < iters; i++)
    {
      bench_otr_send_and_receive (m->a, m->b, m);
      bench_otr_send_and_receive (m->b, m->a, m);
    }
}

static void
ake_iter (gpointer data, guint iters)
{
  BenchOtrMsg *m = data;

  for (guint i = 0; i < iters; i++)
    if (!bench_otr_run_ake (m->a, m->b))
      bench_otr_fail ("AKE did not complete", 0);
}

int
bench_otr_v2_round (Peer *a, Peer *b, const char *workdir, gboolean quick)
{
  static const gsize sizes[] = { 16, 1024 };
  gint64 target = quick ? 10 * 1000 * 1000 : 100 * 1000 * 1000;
  g_autofree char *fp_path = g_build_filename (workdir, "otr-fingerprints-write.txt", NULL);
  SendBench s[2];
  BenchOtrMsg m[2];
  PartBench p;
  char key[64];

  for (guint i = 0; i < 2; i++)
    {
      char *text = g_malloc (sizes[i] + 1);

      bench_fill_text (text, sizes[i]);
      text[sizes[i]] = '\0';
      s[i].from = a;
      s[i].text = text;
      m[i].a = a;
      m[i].b = b;
      m[i].text = text;
      m[i].len = sizes[i];
    }
  part_init (&p, a, fp_path);
  {
    /* Turns and the AKE are milliseconds each: longer samples. */
    BenchCase cases[10] = {
      { "send.16", send_iter, &s[0], 0, NULL, 0 },
      { "send.1024", send_iter, &s[1], 0, NULL, 0 },
      { "turn.16", turn_iter, &m[0], 0, NULL, 0 },
      { "turn.1024", turn_iter, &m[1], 0, NULL, 0 },
      { "ake", ake_iter, &m[0], 0, NULL, 0 },
      { "part.dh_keygen", dh_keygen_iter, &p, 0, NULL, 0 },
      { "part.dh_session", dh_session_iter, &p, 0, NULL, 0 },
      { "part.dsa_sign", dsa_sign_iter, &p, 0, NULL, 0 },
      { "part.dsa_verify", dsa_verify_iter, &p, 0, NULL, 0 },
      { "fpwrite", fpwrite_iter, &p, 0, NULL, 0 },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        gint64 t = i >= 2 && i <= 4 ? 2 * target : target;

        bench_run_interleaved (&cases[i], 1, 1, t);
        g_snprintf (key, sizeof key, "%s.ns", cases[i].key);
        bench_emit (key, cases[i].samples[0]);
        bench_case_clear (&cases[i]);
      }
  }
  /* The messages sent alone were never delivered: that changes nothing
   * for the cases after them (libotr keeps no receive window). */
  g_unlink (fp_path);
  part_clear (&p);
  g_free (s[0].text);
  g_free (s[1].text);
  return 0;
}

/* ---- callgrind targets -------------------------------------------------- */

static void
oneway_iter (gpointer data, guint iters)
{
  BenchOtrMsg *m = data;

  for (guint i = 0; i < iters; i++)
    bench_otr_send_and_receive (m->a, m->b, m);
}

int
bench_otr_callgrind (Peer *a, Peer *b, const char *what, guint repeat)
{
  static char text[] = "hello, first msg";   /* 16 bytes */
  BenchOtrMsg m = { a, b, text, sizeof text - 1 };
  SendBench s = { a, text };
  PartBench p;
  BenchFunc fn = NULL;
  gpointer data = &p;

  part_init (&p, a, NULL);
  if (strcmp (what, "otr-turn") == 0)
    fn = turn_iter, data = &m;
  else if (strcmp (what, "otr-existing") == 0)
    fn = oneway_iter, data = &m;
  else if (strcmp (what, "otr-send") == 0)
    fn = send_iter, data = &s;
  else if (strcmp (what, "otr-ake") == 0)
    fn = ake_iter, data = &m;
  else if (strcmp (what, "otr-dh-keygen") == 0)
    fn = dh_keygen_iter;
  else if (strcmp (what, "otr-dh-session") == 0)
    fn = dh_session_iter;
  else if (strcmp (what, "otr-dsa-sign") == 0)
    fn = dsa_sign_iter;
  else if (strcmp (what, "otr-dsa-verify") == 0)
    fn = dsa_verify_iter;
  else
    {
      fprintf (stderr, "bench-otr: unknown callgrind target %s\n", what);
      return 2;
    }
  /* Warm-up: two turns put both sides' keys in their steady rotation. */
  turn_iter (&m, 2);
  if (fn == oneway_iter)
    oneway_iter (&m, 1);
  else if (fn != turn_iter)
    fn (data, 1);
  bench_cg_run (fn, data, repeat);
  part_clear (&p);
  return 0;
}
