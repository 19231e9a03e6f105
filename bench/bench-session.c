/* purple-e2ee benchmarks — the session layer (what the plugin calls per
 * message) and the keyring at 100 / 10,000 / 100,000 buddies (row 5: load,
 * one durable state change, peak RSS).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <glib/gstdio.h>

#include "bench-e2ee.h"
#include "bench-util.h"
#include "e2ee-jwk.h"
#include "e2ee-keyring.h"
#include "e2ee-session.h"
#include "e2ee-wipe.h"

#define PROTO "prpl-jabber"
#define ALICE "alice@example.org"
#define BOB "bob@example.org"

static void G_GNUC_NORETURN
die (const char *what, GError *error)
{
  fprintf (stderr, "bench: %s failed: %s\n", what, error ? error->message : "(no error)");
  exit (1);
}

/* ---- session: encrypt + receive ---------------------------------------- */

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
} Party;

typedef struct {
  Party a, b;
  char *text;
  gsize len;
  gint64 now;
} SessionBench;

static void
party_init (Party *p, const char *workdir, const char *name)
{
  g_autofree char *path = g_strdup_printf ("%s/session-%s.keyring", workdir, name);
  GError *error = NULL;

  /* Never saved: the session row measures messages, not the disk. */
  p->ctx = e2ee_context_new (e2ee_keyring_new (path));
  p->account = e2ee_context_ensure_account (p->ctx, PROTO, name, NULL, &error);
  if (p->account == NULL)
    die ("e2ee_context_ensure_account", error);
}

/* @to learns @from's published key set, as from a profile. */
static void
party_learn (Party *to, Party *from, const char *from_name)
{
  GPtrArray *keys = e2ee_context_own_keyset (from->ctx, from->account);
  E2eeLearnResult r = e2ee_context_learn_keys (to->ctx, to->account, from_name, keys, NULL);

  if (r != E2EE_LEARN_FIRST_CONTACT)
    die ("e2ee_context_learn_keys", NULL);
  g_ptr_array_unref (keys);
}

static void
session_iter (gpointer data, guint iters)
{
  SessionBench *s = data;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      char **pieces = e2ee_context_encrypt (s->a.ctx, s->a.account, BOB, s->text, 0, &error);
      E2eeRecvResult res = { 0 };

      if (pieces == NULL || pieces[0] == NULL || pieces[1] != NULL)
        die ("e2ee_context_encrypt", error);
      e2ee_context_receive (s->b.ctx, s->b.account, ALICE, pieces[0], s->now, &res);
      if (res.kind != E2EE_RECV_MESSAGE || strlen (res.plaintext) != s->len)
        die ("e2ee_context_receive", res.error);
      e2ee_recv_result_clear (&res);
      g_strfreev (pieces);
    }
}

void
bench_rows_session (BenchRun *run)
{
  static const gsize sizes[] = { 16, 256, 1024, 65536 };
  SessionBench s;

  memset (&s, 0, sizeof s);
  party_init (&s.a, run->workdir, ALICE);
  party_init (&s.b, run->workdir, BOB);
  party_learn (&s.a, &s.b, BOB);
  party_learn (&s.b, &s.a, ALICE);
  s.now = g_get_monotonic_time () / G_USEC_PER_SEC;

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      BenchCase c = { "session", session_iter, &s, 0, NULL, 0 };
      char key[64];

      s.len = sizes[i];
      s.text = g_malloc (s.len + 1);
      bench_fill_text (s.text, s.len);
      s.text[s.len] = '\0';
      bench_run_interleaved (&c, 1, run->quick ? 3 : 11,
                             run->quick ? 10 * 1000 * 1000 : 100 * 1000 * 1000);
      g_snprintf (key, sizeof key, "ours.session.%zu.ns", s.len);
      bench_record (run, key, bench_median (c.samples, c.n_samples));
      bench_case_clear (&c);
      g_free (s.text);
    }
  e2ee_context_free (s.a.ctx);
  e2ee_context_free (s.b.ctx);
}

/* ---- row 5: keyring ---------------------------------------------------- */

/* Distinct valid public keys without a scalar multiplication each:
 * walks Q, Q+G, Q+2G, ... from a random Q. */
typedef struct {
  gcry_ctx_t ctx;
  gcry_mpi_point_t p, g;
  gcry_mpi_t x, y;
} PointWalk;

static void
walk_init (PointWalk *w)
{
  guint8 k[32];
  gcry_mpi_t mk = NULL;

  if (gcry_mpi_ec_new (&w->ctx, NULL, "NIST P-256") != 0)
    die ("gcry_mpi_ec_new", NULL);
  w->g = gcry_mpi_ec_get_point ("g", w->ctx, 1);
  w->p = gcry_mpi_point_new (0);
  w->x = gcry_mpi_new (0);
  w->y = gcry_mpi_new (0);
  gcry_randomize (k, sizeof k, GCRY_STRONG_RANDOM);
  k[0] &= 0x7f;
  gcry_mpi_scan (&mk, GCRYMPI_FMT_USG, k, sizeof k, NULL);
  gcry_mpi_ec_mul (w->p, mk, w->g, w->ctx);
  gcry_mpi_release (mk);
}

static E2eeKey *
walk_next (PointWalk *w)
{
  guint8 x[32], y[32];
  size_t n;
  GError *error = NULL;
  E2eeKey *key;

  gcry_mpi_ec_add (w->p, w->p, w->g, w->ctx);
  if (gcry_mpi_ec_get_affine (w->x, w->y, w->p, w->ctx) != 0)
    die ("point walk", NULL);
  memset (x, 0, sizeof x);
  memset (y, 0, sizeof y);
  gcry_mpi_print (GCRYMPI_FMT_USG, NULL, 0, &n, w->x);
  gcry_mpi_print (GCRYMPI_FMT_USG, x + 32 - n, n, NULL, w->x);
  gcry_mpi_print (GCRYMPI_FMT_USG, NULL, 0, &n, w->y);
  gcry_mpi_print (GCRYMPI_FMT_USG, y + 32 - n, n, NULL, w->y);
  key = e2ee_key_new_public (x, y, &error);
  if (key == NULL)
    die ("e2ee_key_new_public", error);
  return key;
}

static void
walk_clear (PointWalk *w)
{
  gcry_mpi_point_release (w->p);
  gcry_mpi_point_release (w->g);
  gcry_mpi_release (w->x);
  gcry_mpi_release (w->y);
  gcry_ctx_release (w->ctx);
}

/* One account with @n buddies, each with one device in the state a
 * buddy one has talked to has: pinned, replay window in use, direction
 * keys cached (the secrets section of the file). */
static int
keyring_generate (guint n, const char *path)
{
  g_autoptr (E2eeKeyring) kr = e2ee_keyring_new (path);
  g_autoptr (E2eeKey) identity = NULL;
  E2eeAccountRecord *account;
  PointWalk w;
  GError *error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  identity = e2ee_key_generate (&error);
  if (identity == NULL)
    die ("e2ee_key_generate", error);
  account = e2ee_keyring_add_account (kr, PROTO, ALICE, identity);
  walk_init (&w);
  for (guint i = 0; i < n; i++)
    {
      char name[64];
      E2eeBuddyRecord *buddy;
      E2eeDeviceRecord *dev;
      E2eeKey *key = walk_next (&w);

      g_snprintf (name, sizeof name, "buddy%06u@example.org", i);
      buddy = e2ee_account_ensure_buddy (account, name);
      dev = e2ee_device_record_new (key, E2EE_TRUST_TOFU, now - 86400 - i);
      e2ee_key_unref (key);
      dev->last_seen = now - i;
      dev->replay_init = TRUE;
      dev->replay_high = G_GUINT64_CONSTANT (1) << 30 | i;
      dev->replay_window = G_GUINT64_CONSTANT (0xfffffffffffff7ff);
      dev->have_keys = TRUE;
      dev->keys_local_caps = e2ee_key_get_caps (identity);
      dev->keys_remote_caps = e2ee_key_get_caps (dev->key);
      gcry_create_nonce (dev->k_send, sizeof dev->k_send);
      gcry_create_nonce (dev->k_recv, sizeof dev->k_recv);
      g_ptr_array_add (buddy->devices, dev);
      buddy->had_encrypted = TRUE;
    }
  walk_clear (&w);
  if (!e2ee_keyring_save (kr, &error))
    die ("e2ee_keyring_save", error);
  return 0;
}

static guint
count_buddies (E2eeKeyring *kr)
{
  GPtrArray *accounts = e2ee_keyring_get_accounts (kr);
  guint n = 0;

  for (guint i = 0; i < accounts->len; i++)
    n += g_hash_table_size (((E2eeAccountRecord *) accounts->pdata[i])->buddies);
  return n;
}

/* Child: load @reps times, then save @reps times; prints medians.  The
 * parent reads the child's peak RSS, which covers the whole keyring in
 * memory plus the parser's and serialiser's working sets. */
static int
keyring_measure (const char *path, guint reps, gboolean save)
{
  g_autofree double *load_ns = g_new0 (double, reps);
  g_autofree double *save_ns = g_new0 (double, reps);
  E2eeKeyring *kr = NULL;
  GError *error = NULL;
  guint n = 0;

  for (guint r = 0; r < reps; r++)
    {
      gint64 t0;

      e2ee_keyring_free (kr);
      t0 = bench_now_ns ();
      kr = e2ee_keyring_load (path, NULL, &error);
      load_ns[r] = (double) (bench_now_ns () - t0);
      if (kr == NULL)
        die ("e2ee_keyring_load", error);
    }
  n = count_buddies (kr);
  bench_emit ("buddies", n);
  bench_emit ("load.ns", bench_median (load_ns, reps));
  for (guint r = 0; save && r < reps; r++)
    {
      /* One state change, as a received message makes it (a device's last
       * seen time), made durable: what every message costs. */
      E2eeAccountRecord *account = e2ee_keyring_get_accounts (kr)->pdata[0];
      g_autofree char *name = g_strdup_printf ("buddy%06u@example.org", (r * 7919u) % MAX (n, 1));
      E2eeBuddyRecord *buddy = e2ee_account_lookup_buddy (account, name);
      gint64 t0;

      if (buddy != NULL && buddy->devices->len > 0)
        ((E2eeDeviceRecord *) buddy->devices->pdata[0])->last_seen++;
      t0 = bench_now_ns ();
      if (!e2ee_keyring_save (kr, &error))
        die ("e2ee_keyring_save", error);
      save_ns[r] = (double) (bench_now_ns () - t0);
    }
  if (save)
    bench_emit ("save.ns", bench_median (save_ns, reps));
  e2ee_keyring_free (kr);
  return 0;
}

int
bench_keyring_child (int argc, char **argv)
{
  /* generate N PATH | measure PATH REPS [load|both] */
  if (argc == 3 && strcmp (argv[0], "generate") == 0)
    return keyring_generate ((guint) atoi (argv[1]), argv[2]);
  if (argc == 4 && strcmp (argv[0], "measure") == 0)
    return keyring_measure (argv[1], (guint) MAX (atoi (argv[2]), 1),
                            strcmp (argv[3], "both") == 0);
  fprintf (stderr, "bench: bad keyring child arguments\n");
  return 2;
}

static gboolean
run_child (BenchRun *run, char **args, GHashTable **results, long *rss)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;

  g_ptr_array_add (argv, (char *) run->self);
  g_ptr_array_add (argv, (char *) "--keyring-child");
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, args[i]);
  g_ptr_array_add (argv, NULL);
  if (!bench_run_child ((char **) argv->pdata, &out, rss, &error))
    {
      fprintf (stderr, "bench: keyring child: %s\n", error->message);
      return FALSE;
    }
  if (results)
    *results = bench_parse_results (out);
  return TRUE;
}

/* The cached file at @path holds @n buddies (generating it if not). */
static gboolean
ensure_keyring (BenchRun *run, guint n, const char *path)
{
  g_autofree char *count = g_strdup_printf ("%u", n);
  char *check[] = { (char *) "measure", (char *) path, (char *) "1", (char *) "load", NULL };
  char *gen[] = { (char *) "generate", count, (char *) path, NULL };
  g_autoptr (GHashTable) res = NULL;
  long rss;
  double have;

  if (g_file_test (path, G_FILE_TEST_EXISTS)
      && run_child (run, check, &res, &rss)
      && bench_lookup (res, "buddies", &have) && have == n)
    return TRUE;
  fprintf (stderr, "bench: generating a keyring with %u buddies (cached in %s)\n", n, path);
  g_unlink (path);
  return run_child (run, gen, NULL, &rss);
}

void
bench_rows_keyring (BenchRun *run)
{
  static const guint counts[] = { 100, 10000, 100000 };
  guint n_counts = run->quick ? 2 : 3;
  /* The keyring refuses a folder that others may open (a build folder
   * usually is): a private one inside it. */
  g_autofree char *dir = g_build_filename (run->workdir, "keyrings", NULL);

  g_mkdir_with_parents (dir, 0700);
  g_chmod (dir, 0700);
  for (guint i = 0; i < n_counts; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/keyring-%u.json", dir, counts[i]);
      const char *reps = run->quick ? "1" : counts[i] >= 100000 ? "3" : "7";
      char *args[] = { (char *) "measure", path, (char *) reps, (char *) "both", NULL };
      g_autoptr (GHashTable) res = NULL;
      long rss = 0;
      double v;
      char key[64];

      if (!ensure_keyring (run, counts[i], path) || !run_child (run, args, &res, &rss))
        continue;
      g_snprintf (key, sizeof key, "ours.keyring.%u.load.ns", counts[i]);
      if (bench_lookup (res, "load.ns", &v))
        bench_record (run, key, v);
      g_snprintf (key, sizeof key, "ours.keyring.%u.save.ns", counts[i]);
      if (bench_lookup (res, "save.ns", &v))
        bench_record (run, key, v);
      g_snprintf (key, sizeof key, "ours.keyring.%u.maxrss.kib", counts[i]);
      bench_record (run, key, (double) rss);
    }
}
