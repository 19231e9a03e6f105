/* purple-e2ee benchmarks — protocol v2 row 2: alternating turns (A
 * sends, B opens, B answers, A opens), unprepared, with
 * e2ee_ratchet_prepare off the critical path, and with durable commits.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "bench-util.h"
#include "bench-v2.h"

/* One iteration is one turn: A sends, B opens, B answers, A opens.  Every
 * message starts a new chain, so each seal is a ratchet step (a key
 * generation and one ECDH) unless it was prepared, and each open is one
 * ECDH.  With @prepare, each side runs e2ee_ratchet_prepare after its
 * receipt, off the critical path (an idle callback in the plugin): that
 * time is counted apart in @prepare_ns, the rest in @path_ns. */
typedef struct {
  const BenchV2Ids *ids;
  E2eeRatchet *a, *b;
  BenchV2Store *store;      /* non-NULL: commit after every seal and open */
  gboolean prepare;
  char *text;
  gsize len;
  gint64 path_ns, prepare_ns;
} TurnBench;

static void
turn_half (TurnBench *t, E2eeRatchet *from, E2eeRatchet *to, gint64 from_row, gint64 to_row)
{
  GError *error = NULL;
  GBytes *m;
  gint64 t0;

  if (t->prepare)
    {
      t0 = bench_now_ns ();
      if (!e2ee_ratchet_prepare (from, &error))
        bench_v2_die ("e2ee_ratchet_prepare", error);
      if (t->store)
        bench_v2_store_commit (t->store, from_row, from);
      t->prepare_ns += bench_now_ns () - t0;
    }
  t0 = bench_now_ns ();
  if (!(m = e2ee_ratchet_seal (from, (const guint8 *) t->text, t->len, &error)))
    bench_v2_die ("e2ee_ratchet_seal", error);
  if (t->store)
    bench_v2_store_commit (t->store, from_row, from);
  bench_v2_open_check (to, m, t->ids->now, t->len);
  if (t->store)
    bench_v2_store_commit (t->store, to_row, to);
  t->path_ns += bench_now_ns () - t0;
  g_bytes_unref (m);
}

static void
turn_iter (gpointer data, guint iters)
{
  TurnBench *t = data;

  for (guint i = 0; i < iters; i++)
    {
      turn_half (t, t->a, t->b, 1, 2);
      turn_half (t, t->b, t->a, 2, 1);
    }
}

static void
turn_init (TurnBench *t, const BenchV2Ids *ids, gsize len, gboolean prepare,
           BenchV2Store *store)
{
  memset (t, 0, sizeof *t);
  t->ids = ids;
  t->len = len;
  t->prepare = prepare;
  t->store = store;
  t->text = g_malloc (len + 1);
  bench_fill_text (t->text, len);
  t->text[len] = '\0';
  bench_v2_start (ids, "hello, first msg", 16, &t->a, &t->b);
}

static void
turn_clear (TurnBench *t)
{
  e2ee_ratchet_free (t->a);
  e2ee_ratchet_free (t->b);
  g_free (t->text);
}

/* Three variants (unprepared, prepared, prepared with commits) at two
 * sizes; each sample splits its time into the critical path and the
 * prepared part. */
static const gsize turn_sizes[] = { 16, 1024 };
static const char *turn_names[] = { "v2.turn", "v2.turn_prepared", "v2.turn_prepared_commit" };

struct _BenchV2Turns {
  BenchV2Store *store;
  TurnBench t[2][3];
  guint iters[2][3];
  double path[2][3][BENCH_V2_MAX_REPS], total[2][3][BENCH_V2_MAX_REPS];
  guint n;
};

BenchV2Turns *
bench_v2_turns_new (BenchRun *run, const BenchV2Ids *ids)
{
  g_autofree char *db_path = g_build_filename (run->workdir, "v2-turn.sqlite", NULL);
  BenchV2Turns *g = g_new0 (BenchV2Turns, 1);

  g->store = bench_v2_store_open (db_path);
  for (guint s = 0; s < 2; s++)
    {
      turn_init (&g->t[s][0], ids, turn_sizes[s], FALSE, NULL);
      turn_init (&g->t[s][1], ids, turn_sizes[s], TRUE, NULL);
      turn_init (&g->t[s][2], ids, turn_sizes[s], TRUE, g->store);
    }
  return g;
}

void
bench_v2_turns_round (BenchV2Turns *g, gint64 target_ns)
{
  if (g->n >= BENCH_V2_MAX_REPS)
    return;
  for (guint s = 0; s < 2; s++)
    for (guint c = 0; c < 3; c++)
      {
        TurnBench *t = &g->t[s][c];

        if (g->iters[s][c] == 0)
          g->iters[s][c] = bench_calibrate (turn_iter, t, target_ns);
        t->path_ns = t->prepare_ns = 0;
        turn_iter (t, g->iters[s][c]);
        g->path[s][c][g->n] = (double) t->path_ns / g->iters[s][c];
        g->total[s][c][g->n] = (double) (t->path_ns + t->prepare_ns) / g->iters[s][c];
      }
  g->n++;
}

void
bench_v2_turns_record (BenchV2Turns *g, BenchRun *run)
{
  char key[64];

  for (guint s = 0; s < 2; s++)
    for (guint c = 0; c < 3; c++)
      {
        g_snprintf (key, sizeof key, "%s.%zu.ns", turn_names[c], turn_sizes[s]);
        bench_record (run, key, bench_median (g->path[s][c], g->n));
        if (c > 0)
          {
            g_snprintf (key, sizeof key, "%s_total.%zu.ns", turn_names[c], turn_sizes[s]);
            bench_record (run, key, bench_median (g->total[s][c], g->n));
          }
      }
}

void
bench_v2_turns_free (BenchV2Turns *g)
{
  for (guint s = 0; s < 2; s++)
    for (guint c = 0; c < 3; c++)
      turn_clear (&g->t[s][c]);
  bench_v2_store_close (g->store);
  g_free (g);
}

