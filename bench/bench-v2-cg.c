/* purple-e2ee benchmarks — protocol v2 operations for callgrind, one
 * each (bench/callgrind-v2.sh): instruction counts do not drift with the
 * load of a shared machine.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "bench-util.h"
#include "bench-v2.h"
#include "e2ee-wipe.h"

static const char text[] = "hello, first msg";   /* 16 bytes */

typedef struct {
  const BenchV2Ids *ids;
  E2eeRatchet *a, *b;
  E2eeRatchet *from, *to;    /* the sides of one message */
  E2eeEcSecret *secret, *other;
} CgBench;

static GBytes *
seal (E2eeRatchet *from)
{
  GError *error = NULL;
  GBytes *m = e2ee_ratchet_seal (from, (const guint8 *) text, sizeof text - 1, &error);

  if (m == NULL)
    bench_v2_die ("e2ee_ratchet_seal", error);
  return m;
}

static void
message (CgBench *c, E2eeRatchet *from, E2eeRatchet *to)
{
  GBytes *m = seal (from);

  bench_v2_open_check (to, m, c->ids->now, sizeof text - 1);
  g_bytes_unref (m);
}

/* A sends, B opens, B answers, A opens: a ratchet step each way. */
static void
turn_iter (gpointer data, guint iters)
{
  CgBench *c = data;

  for (guint i = 0; i < iters; i++)
    {
      message (c, c->a, c->b);
      message (c, c->b, c->a);
    }
}

static void
half_iter (gpointer data, guint iters)
{
  CgBench *c = data;

  for (guint i = 0; i < iters; i++)
    message (c, c->from, c->to);
}

static void
seal_iter (gpointer data, guint iters)
{
  CgBench *c = data;

  for (guint i = 0; i < iters; i++)
    g_bytes_unref (seal (c->from));
}

static void
prepare_iter (gpointer data, guint iters)
{
  CgBench *c = data;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    if (!e2ee_ratchet_prepare (c->from, &error))
      bench_v2_die ("e2ee_ratchet_prepare", error);
}

static void
start_iter (gpointer data, guint iters)
{
  CgBench *c = data;

  for (guint i = 0; i < iters; i++)
    {
      E2eeRatchet *a = NULL, *b = NULL;

      bench_v2_start (c->ids, text, sizeof text - 1, &a, &b);
      e2ee_ratchet_free (a);
      e2ee_ratchet_free (b);
    }
}

static void
prekey_verify_iter (gpointer data, guint iters)
{
  CgBench *c = data;
  const BenchV2Ids *ids = c->ids;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      E2eePrekey *pk = e2ee_prekey_verify (g_bytes_get_data (ids->record_b, NULL),
                                           g_bytes_get_size (ids->record_b),
                                           e2ee_sign_key_get_public (ids->sig_b), ids->b_pub,
                                           ids->dev_b, ids->now, &error);

      if (pk == NULL)
        bench_v2_die ("e2ee_prekey_verify", error);
      e2ee_prekey_free (pk);
    }
}

static void
ecdh_iter (gpointer data, guint iters)
{
  CgBench *c = data;
  guint8 out[32];
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    if (!e2ee_ec_secret_ecdh (c->secret, e2ee_ec_secret_get_public (c->other), out, &error))
      bench_v2_die ("e2ee_ec_secret_ecdh", error);
  e2ee_wipe (out, sizeof out);
}

static void
keygen_iter (gpointer data, guint iters)
{
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      E2eeEcSecret *s = e2ee_ec_secret_generate (&error);

      if (s == NULL)
        bench_v2_die ("e2ee_ec_secret_generate", error);
      e2ee_ec_secret_free (s);
    }
}

int
bench_v2_callgrind (const char *what, guint repeat)
{
  BenchV2Ids ids;
  CgBench c = { &ids };
  BenchFunc fn = NULL;

  bench_v2_ids_init (&ids);
  bench_v2_start (&ids, text, sizeof text - 1, &c.a, &c.b);
  c.secret = e2ee_ec_secret_generate (NULL);
  c.other = e2ee_ec_secret_generate (NULL);
  if (c.secret == NULL || c.other == NULL)
    bench_v2_die ("e2ee_ec_secret_generate", NULL);
  /* Two turns: both sides past the start, chains in their steady state;
   * A's ratchet key is now due. */
  turn_iter (&c, 2);
  if (strcmp (what, "v2-turn") == 0)
    fn = turn_iter;
  else if (strcmp (what, "v2-seal") == 0 || strcmp (what, "v2-existing") == 0)
    {
      /* A steps to a new chain, then sends on it again. */
      message (&c, c.a, c.b);
      c.from = c.a, c.to = c.b;
      fn = strcmp (what, "v2-seal") == 0 ? seal_iter : half_iter;
    }
  else if (strcmp (what, "v2-half-prepared") == 0 || strcmp (what, "v2-prepare") == 0)
    {
      /* B has just opened A's message on a new chain: his key is due. */
      message (&c, c.a, c.b);
      c.from = c.b, c.to = c.a;
      if (strcmp (what, "v2-prepare") == 0)
        fn = prepare_iter;
      else
        prepare_iter (&c, 1), fn = half_iter;
    }
  else if (strcmp (what, "v2-start") == 0)
    start_iter (&c, 1), fn = start_iter;
  else if (strcmp (what, "v2-prekey-verify") == 0)
    prekey_verify_iter (&c, 1), fn = prekey_verify_iter;
  else if (strcmp (what, "p256-ecdh") == 0)
    ecdh_iter (&c, 1), fn = ecdh_iter;
  else if (strcmp (what, "p256-keygen") == 0)
    keygen_iter (&c, 1), fn = keygen_iter;
  if (fn == NULL)
    {
      fprintf (stderr, "bench: unknown callgrind target %s\n", what);
      return 2;
    }
  /* A repeated prepare or prepared half would not be the same operation. */
  if (fn == prepare_iter || strcmp (what, "v2-half-prepared") == 0)
    repeat = 1;
  bench_cg_run (fn, &c, repeat);
  e2ee_ec_secret_free (c.secret);
  e2ee_ec_secret_free (c.other);
  e2ee_ratchet_free (c.a);
  e2ee_ratchet_free (c.b);
  bench_v2_ids_clear (&ids);
  return 0;
}
