/* purple-e2ee benchmarks — the libotr 4 reference rows.
 *
 * A separate program on purpose: otrl_init() installs process-wide
 * libgcrypt allocation handlers (every allocation goes through libotr's
 * wiping wrappers), which would change the cost of our own rows if they
 * ran in the same process.  Prints "<key> <value>" lines (bench-util.h).
 *
 * Usage: bench-otr [--quick] --workdir DIR
 *        bench-otr [--quick] --workdir DIR --v2-round  (one sample of each
 *          protocol v2 reference, bench-otr-v2.c)
 *        bench-otr --workdir DIR --callgrind TARGET [--repeat N]
 *        bench-otr --fingerprints-child N FILE REPS   (internal)
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libotr/privkey.h>
#include <libotr/proto.h>
#include <libotr/message.h>
#include <libotr/userstate.h>
#include <libotr/instag.h>

#include "bench-otr.h"
#include "bench-util.h"

static int max_message_size = 0;
static OtrlMessageAppOps ops;

void G_GNUC_NORETURN
bench_otr_fail (const char *what, gcry_error_t err)
{
  fprintf (stderr, "bench-otr: %s: %s\n", what, err ? gcry_strerror (err) : "failed");
  exit (1);
}

static OtrlPolicy
op_policy (void *opdata, ConnContext *context)
{
  return OTRL_POLICY_ALLOW_V3 | OTRL_POLICY_ERROR_START_AKE;
}

static int
op_is_logged_in (void *opdata, const char *accountname, const char *protocol,
                 const char *recipient)
{
  return 1;
}

static void
op_inject (void *opdata, const char *accountname, const char *protocol,
           const char *recipient, const char *message)
{
  Peer *p = opdata;
  Wire *w = g_new0 (Wire, 1);

  w->to = g_strdup (recipient);
  w->text = g_strdup (message);
  p->injected++;
  g_queue_push_tail (&p->other->inbox, w);
}

static void
op_gone_secure (void *opdata, ConnContext *context)
{
  ((Peer *) opdata)->secure_count++;
}

static void
op_still_secure (void *opdata, ConnContext *context, int is_reply)
{
  ((Peer *) opdata)->secure_count++;
}

static int
op_max_message_size (void *opdata, ConnContext *context)
{
  return max_message_size;
}

static const char *
op_account_name (void *opdata, const char *account, const char *protocol)
{
  return account;
}

static void
op_account_name_free (void *opdata, const char *account_name)
{
}

static void
op_handle_msg_event (void *opdata, OtrlMessageEvent msg_event,
                     ConnContext *context, const char *message, gcry_error_t err)
{
  Peer *p = opdata;

  /* Log-only events are fine; anything else means the run is broken. */
  if (msg_event != OTRL_MSGEVENT_LOG_HEARTBEAT_RCVD
      && msg_event != OTRL_MSGEVENT_LOG_HEARTBEAT_SENT)
    {
      p->errors++;
      fprintf (stderr, "bench-otr: %s: message event %d\n", p->name, (int) msg_event);
    }
}

static void
op_create_instag (void *opdata, const char *accountname, const char *protocol)
{
  Peer *p = opdata;
  gcry_error_t err = otrl_instag_generate (p->us, p->instag_file, accountname, protocol);

  if (err)
    bench_otr_fail ("otrl_instag_generate", err);
}

static void
setup_ops (void)
{
  memset (&ops, 0, sizeof ops);
  ops.policy = op_policy;
  ops.is_logged_in = op_is_logged_in;
  ops.inject_message = op_inject;
  ops.gone_secure = op_gone_secure;
  ops.still_secure = op_still_secure;
  ops.max_message_size = op_max_message_size;
  ops.account_name = op_account_name;
  ops.account_name_free = op_account_name_free;
  ops.handle_msg_event = op_handle_msg_event;
  ops.create_instag = op_create_instag;
}

/* Delivers one queued message to @p; returns the user-visible plaintext
 * (NULL for protocol messages). */
char *
bench_otr_deliver (Peer *p)
{
  Wire *w = g_queue_pop_head (&p->inbox);
  char *newmsg = NULL;
  OtrlTLV *tlvs = NULL;
  int ignore;
  char *shown = NULL;

  ignore = otrl_message_receiving (p->us, &ops, p, p->name, PROTO, p->other->name,
                                   w->text, &newmsg, &tlvs, NULL, NULL, NULL);
  if (!ignore)
    shown = g_strdup (newmsg ? newmsg : w->text);
  if (newmsg)
    otrl_message_free (newmsg);
  if (tlvs)
    otrl_tlv_free (tlvs);
  g_free (w->to);
  g_free (w->text);
  g_free (w);
  return shown;
}

/* Delivers until both inboxes are empty; counts visible messages. */
static guint
pump (Peer *a, Peer *b)
{
  guint shown = 0;

  while (!g_queue_is_empty (&a->inbox) || !g_queue_is_empty (&b->inbox))
    {
      Peer *p = !g_queue_is_empty (&a->inbox) ? a : b;
      char *m = bench_otr_deliver (p);

      if (m)
        shown++;
      g_free (m);
    }
  return shown;
}

static void
peer_init (Peer *p, const char *name, const char *keyfile, const char *instag_file)
{
  gcry_error_t err;

  p->name = name;
  p->us = otrl_userstate_create ();
  p->instag_file = instag_file;
  g_queue_init (&p->inbox);
  if (g_file_test (keyfile, G_FILE_TEST_EXISTS))
    {
      err = otrl_privkey_read (p->us, keyfile);
      if (err)
        bench_otr_fail ("otrl_privkey_read", err);
    }
  if (otrl_privkey_find (p->us, name, PROTO) == NULL)
    {
      /* Cached in the work folder: DSA generation is slow and its cost is
       * measured separately. */
      err = otrl_privkey_generate (p->us, keyfile, name, PROTO);
      if (err)
        bench_otr_fail ("otrl_privkey_generate", err);
    }
  if (g_file_test (instag_file, G_FILE_TEST_EXISTS))
    otrl_instag_read (p->us, instag_file);
}

/* Runs one AKE started by @a's query; TRUE when both sides went secure. */
gboolean
bench_otr_run_ake (Peer *a, Peer *b)
{
  char *query = otrl_proto_default_query_msg (a->name, OTRL_POLICY_ALLOW_V3);
  guint sa = a->secure_count, sb = b->secure_count;

  op_inject (a, a->name, PROTO, b->name, query);
  free (query);
  pump (a, b);
  return a->secure_count > sa && b->secure_count > sb;
}

char *
bench_otr_send (Peer *from, const char *text, OtrlFragmentPolicy policy)
{
  char *out = NULL;
  gcry_error_t err;

  err = otrl_message_sending (from->us, &ops, from, from->name, PROTO,
                              from->other->name, OTRL_INSTAG_BEST, text, NULL,
                              &out, policy, NULL, NULL, NULL);
  if (err)
    bench_otr_fail ("otrl_message_sending", err);
  return out;
}


void
bench_otr_check_shown (char *shown, const BenchOtrMsg *m)
{
  if (shown == NULL || strlen (shown) != m->len)
    {
      fprintf (stderr, "bench-otr: message lost or altered\n");
      exit (1);
    }
  g_free (shown);
}

void
bench_otr_send_and_receive (Peer *from, Peer *to, const BenchOtrMsg *m)
{
  char *wire = bench_otr_send (from, m->text, OTRL_FRAGMENT_SEND_SKIP);

  if (wire == NULL || strncmp (wire, "?OTR:", 5) != 0)
    {
      fprintf (stderr, "bench-otr: message was not encrypted\n");
      exit (1);
    }
  op_inject (from, from->name, PROTO, to->name, wire);
  otrl_message_free (wire);
  bench_otr_check_shown (bench_otr_deliver (to), m);
}

static void
bench_oneway (gpointer data, guint iters)
{
  BenchOtrMsg *m = data;

  for (guint i = 0; i < iters; i++)
    bench_otr_send_and_receive (m->a, m->b, m);
}

/* One iteration = two messages (A to B, then B to A); each side then
 * sees a fresh DH key and rotates, which is the point of this row. */
static void
bench_alternating (gpointer data, guint iters)
{
  BenchOtrMsg *m = data;

  for (guint i = 0; i < iters; i++)
    {
      bench_otr_send_and_receive (m->a, m->b, m);
      bench_otr_send_and_receive (m->b, m->a, m);
    }
}

typedef struct {
  Peer *a, *b;
} AkeBench;

static void
bench_ake (gpointer data, guint iters)
{
  AkeBench *k = data;

  for (guint i = 0; i < iters; i++)
    if (!bench_otr_run_ake (k->a, k->b))
      {
        fprintf (stderr, "bench-otr: AKE did not complete\n");
        exit (1);
      }
}

typedef struct {
  const char *dir;
  guint n;
} GenBench;

static void
bench_privkey_generate (gpointer data, guint iters)
{
  GenBench *g = data;

  for (guint i = 0; i < iters; i++)
    {
      OtrlUserState us = otrl_userstate_create ();
      g_autofree char *file = g_strdup_printf ("%s/otr-gen.priv", g->dir);
      g_autofree char *acct = g_strdup_printf ("gen%u", g->n++);
      gcry_error_t err;

      g_unlink (file);
      err = otrl_privkey_generate (us, file, acct, PROTO);
      if (err)
        bench_otr_fail ("otrl_privkey_generate", err);
      otrl_userstate_free (us);
      g_unlink (file);
    }
}

static const gsize msg_sizes[] = { 16, 256, 1024, 65536 };
static const gsize wire_sizes[] = { 2, 16, 256, 1024 };

static void
message_rows (Peer *a, Peer *b, gboolean quick)
{
  guint reps = quick ? 3 : 11;
  gint64 target = quick ? 20 * 1000 * 1000 : 100 * 1000 * 1000;

  for (guint s = 0; s < G_N_ELEMENTS (msg_sizes); s++)
    {
      BenchOtrMsg m = { a, b, g_malloc (msg_sizes[s] + 1), msg_sizes[s] };
      BenchCase cases[2] = {
        { "oneway", bench_oneway, &m, 0, NULL, 0 },
        { "alternating", bench_alternating, &m, 0, NULL, 0 },
      };
      char key[64];

      bench_fill_text (m.text, m.len);
      m.text[m.len] = '\0';
      bench_run_interleaved (cases, 2, reps, target);
      g_snprintf (key, sizeof key, "otr.oneway.%zu.ns", m.len);
      bench_emit (key, bench_median (cases[0].samples, cases[0].n_samples));
      /* Two messages per iteration. */
      g_snprintf (key, sizeof key, "otr.alternating.%zu.ns", m.len);
      bench_emit (key, bench_median (cases[1].samples, cases[1].n_samples) / 2.0);
      bench_case_clear (&cases[0]);
      bench_case_clear (&cases[1]);
      g_free (m.text);
    }
}

static void
wire_rows (Peer *a, Peer *b)
{
  for (guint s = 0; s < G_N_ELEMENTS (wire_sizes); s++)
    {
      gsize len = wire_sizes[s];
      g_autofree char *text = g_malloc (len + 1);
      char *wire;
      char key[64];
      guint before;
      BenchOtrMsg m = { a, b, text, len };

      bench_fill_text (text, len);
      text[len] = '\0';

      /* One message first: after a reply, libotr's next data message also
       * reveals old MAC keys.  Measuring the second gives libotr its
       * smallest (steady one-way) overhead. */
      max_message_size = 0;
      bench_otr_send_and_receive (a, b, &m);
      wire = bench_otr_send (a, text, OTRL_FRAGMENT_SEND_SKIP);
      g_snprintf (key, sizeof key, "otr.overhead.%zu.bytes", len);
      bench_emit (key, (double) strlen (wire) - (double) len);
      op_inject (a, a->name, PROTO, b->name, wire);
      otrl_message_free (wire);
      bench_otr_check_shown (bench_otr_deliver (b), &m);

      /* libotr fragments for us when the host states a size limit. */
      max_message_size = 400;
      before = a->injected;
      wire = bench_otr_send (a, text, OTRL_FRAGMENT_SEND_ALL);
      if (wire)
        otrl_message_free (wire);
      g_snprintf (key, sizeof key, "otr.fragments400.%zu.count", len);
      bench_emit (key, (double) (a->injected - before));
      if (pump (a, b) != 1)
        {
          fprintf (stderr, "bench-otr: fragmented message not reassembled\n");
          exit (1);
        }
      max_message_size = 0;
    }
}

/* libotr's own buddy store: the fingerprint file, read into contexts.
 * The closest counterpart of our keyring. */
static void
write_fingerprint_file (const char *path, guint n)
{
  FILE *f = fopen (path, "w");

  if (f == NULL)
    bench_otr_fail ("fopen fingerprints", 0);
  for (guint i = 0; i < n; i++)
    {
      guint8 fp[20];

      gcry_create_nonce (fp, sizeof fp);
      fprintf (f, "buddy%u@example.org\talice@example.org\tprpl-jabber\t", i);
      for (guint j = 0; j < sizeof fp; j++)
        fprintf (f, "%02x", fp[j]);
      fprintf (f, "\tsmp\n");
    }
  fclose (f);
}

static int
fingerprints_child (guint n, const char *path, guint reps)
{
  g_autofree double *load = g_new0 (double, reps);
  g_autofree double *save = g_new0 (double, reps);
  g_autofree char *out = g_strdup_printf ("%s.out", path);
  OtrlUserState us = NULL;

  for (guint r = 0; r < reps; r++)
    {
      gint64 t0;
      gcry_error_t err;

      if (us)
        otrl_userstate_free (us);
      us = otrl_userstate_create ();
      t0 = bench_now_ns ();
      err = otrl_privkey_read_fingerprints (us, path, NULL, NULL);
      load[r] = (double) (bench_now_ns () - t0);
      if (err)
        bench_otr_fail ("otrl_privkey_read_fingerprints", err);
      t0 = bench_now_ns ();
      err = otrl_privkey_write_fingerprints (us, out);
      save[r] = (double) (bench_now_ns () - t0);
      if (err)
        bench_otr_fail ("otrl_privkey_write_fingerprints", err);
    }
  bench_emit ("load.ns", bench_median (load, reps));
  bench_emit ("save.ns", bench_median (save, reps));
  g_unlink (out);
  otrl_userstate_free (us);
  return 0;
}

static void
fingerprint_rows (const char *self, const char *dir, gboolean quick)
{
  /* Not 100,000: libotr keeps contexts in a sorted linked list, so
   * loading n buddies costs O(n^2); one such load took 288 s (README). */
  static const guint counts[] = { 100, 10000 };
  guint n_counts = G_N_ELEMENTS (counts);

  for (guint i = 0; i < n_counts; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/otr-fingerprints-%u.txt", dir, counts[i]);
      g_autofree char *n = g_strdup_printf ("%u", counts[i]);
      const char *reps = quick ? "1" : "5";
      char *argv[] = { (char *) self, (char *) "--fingerprints-child", n, path,
                       (char *) reps, NULL };
      g_autofree char *out = NULL;
      g_autoptr (GHashTable) res = NULL;
      g_autoptr (GError) error = NULL;
      long rss = 0;
      double v;
      char key[64];

      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        write_fingerprint_file (path, counts[i]);
      if (!bench_run_child (argv, &out, &rss, &error))
        {
          fprintf (stderr, "bench-otr: %s\n", error->message);
          continue;
        }
      res = bench_parse_results (out);
      if (bench_lookup (res, "load.ns", &v))
        {
          g_snprintf (key, sizeof key, "otr.fpstore.%u.load.ns", counts[i]);
          bench_emit (key, v);
        }
      if (bench_lookup (res, "save.ns", &v))
        {
          g_snprintf (key, sizeof key, "otr.fpstore.%u.save.ns", counts[i]);
          bench_emit (key, v);
        }
      g_snprintf (key, sizeof key, "otr.fpstore.%u.maxrss.kib", counts[i]);
      bench_emit (key, (double) rss);
    }
}

int
main (int argc, char **argv)
{
  gboolean quick = FALSE;
  const char *workdir = NULL;
  g_autofree char *keyfile = NULL;
  g_autofree char *instag_a = NULL, *instag_b = NULL;
  Peer alice = { 0 }, bob = { 0 };
  AkeBench ake;
  GenBench gen;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  const char *callgrind = NULL;
  gboolean v2_round = FALSE;
  guint repeat = 1;

  OTRL_INIT;
  setup_ops ();

  if (argc == 5 && strcmp (argv[1], "--fingerprints-child") == 0)
    return fingerprints_child ((guint) atoi (argv[2]), argv[3], (guint) MAX (atoi (argv[4]), 1));

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--quick") == 0)
        quick = TRUE;
      else if (strcmp (argv[i], "--workdir") == 0 && i + 1 < argc)
        workdir = argv[++i];
      else if (strcmp (argv[i], "--callgrind") == 0 && i + 1 < argc)
        callgrind = argv[++i];
      else if (strcmp (argv[i], "--repeat") == 0 && i + 1 < argc)
        repeat = (guint) atoi (argv[++i]);
      else if (strcmp (argv[i], "--v2-round") == 0)
        v2_round = TRUE;
      else
        {
          fprintf (stderr, "usage: %s [--quick] --workdir DIR [--v2-round | --callgrind TARGET [--repeat N]]\n", argv[0]);
          return 2;
        }
    }
  if (workdir == NULL)
    workdir = g_get_tmp_dir ();
  g_mkdir_with_parents (workdir, 0700);
  keyfile = g_strdup_printf ("%s/otr-keys.priv", workdir);
  instag_a = g_strdup_printf ("%s/otr-alice.instag", workdir);
  instag_b = g_strdup_printf ("%s/otr-bob.instag", workdir);

  peer_init (&alice, "alice@example.org", keyfile, instag_a);
  peer_init (&bob, "bob@example.org", keyfile, instag_b);
  alice.other = &bob;
  bob.other = &alice;

  if (!bench_otr_run_ake (&alice, &bob))
    {
      fprintf (stderr, "bench-otr: first AKE failed\n");
      return 1;
    }
  if (callgrind)
    return bench_otr_callgrind (&alice, &bob, callgrind, repeat);
  if (v2_round)
    return bench_otr_v2_round (&alice, &bob, workdir, quick);

  /* Full AKE (DH commit, DH key, reveal signature, signature), both sides
   * in one process, so the figure is the sum of both parties' work. */
  ake.a = &alice;
  ake.b = &bob;
  bench_emit ("otr.ake.ns", bench_time_once (bench_ake, &ake, quick ? 3 : 15));

  message_rows (&alice, &bob, quick);
  wire_rows (&alice, &bob);

  gen.dir = workdir;
  gen.n = 0;
  bench_emit ("otr.privkey_generate.ns",
              bench_time_once (bench_privkey_generate, &gen, quick ? 1 : 5));

  if (self != NULL)
    fingerprint_rows (self, workdir, quick);

  if (alice.errors || bob.errors)
    {
      fprintf (stderr, "bench-otr: %u unexpected message events\n", alice.errors + bob.errors);
      return 1;
    }
  otrl_userstate_free (alice.us);
  otrl_userstate_free (bob.us);
  return 0;
}
