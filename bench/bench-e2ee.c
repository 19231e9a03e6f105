/* purple-e2ee benchmarks — main program: measures our rows and the raw
 * libgcrypt floor in this process, runs the libotr program as a child
 * (it installs process-wide libgcrypt hooks), and prints one table with
 * ratios.  See bench/README.md.
 *
 *   e2ee-bench [--quick] [--workdir DIR] [--otr PATH] [--raw]
 *   e2ee-bench --callgrind TARGET [--key N] [--repeat N]
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <glib/gstdio.h>

#include "bench-e2ee.h"
#include "bench-util.h"
#include "e2ee-gcrypt.h"

#ifndef BENCH_OTR_VERSION
#define BENCH_OTR_VERSION "?"
#endif

void
bench_record (BenchRun *run, const char *key, double value)
{
  double *slot = g_new (double, 1);

  *slot = value;
  g_hash_table_replace (run->results, g_strdup (key), slot);
  fprintf (stderr, "  %-32s %.6g\n", key, value);
}

/* ---- table ------------------------------------------------------------- */

typedef enum { UNIT_NS, UNIT_BYTES, UNIT_COUNT, UNIT_KIB } Unit;

typedef struct {
  char label[48];
  char ours_key[48];
  char ref_name[40];
  char ref_key[48];
  Unit unit;
  gsize mbps_size;          /* > 0: also show MB/s for this message size */
} Line;

static void
format_value (char *buf, gsize n, double v, Unit unit, gsize mbps_size)
{
  char num[32];

  switch (unit)
    {
    case UNIT_NS:
      if (v < 10000)
        g_snprintf (num, sizeof num, "%.0f ns", v);
      else if (v < 1e7)
        g_snprintf (num, sizeof num, "%.1f us", v / 1e3);
      else if (v < 1e10)
        g_snprintf (num, sizeof num, "%.1f ms", v / 1e6);
      else
        g_snprintf (num, sizeof num, "%.1f s", v / 1e9);
      break;
    case UNIT_BYTES:
      g_snprintf (num, sizeof num, "%+.0f B", v);
      break;
    case UNIT_COUNT:
      g_snprintf (num, sizeof num, "%.0f", v);
      break;
    case UNIT_KIB:
      g_snprintf (num, sizeof num, "%.1f MiB", v / 1024.0);
      break;
    }
  if (mbps_size > 0 && v > 0)
    g_snprintf (buf, n, "%s %6.1f MB/s", num, (double) mbps_size * 1e3 / v);
  else
    g_snprintf (buf, n, "%s", num);
}

static void
add_line (GArray *lines, const char *label, const char *ours_key,
          const char *ref_name, const char *ref_key, Unit unit, gsize mbps)
{
  Line l;

  memset (&l, 0, sizeof l);
  g_strlcpy (l.label, label, sizeof l.label);
  g_strlcpy (l.ours_key, ours_key ? ours_key : "", sizeof l.ours_key);
  g_strlcpy (l.ref_name, ref_name ? ref_name : "", sizeof l.ref_name);
  g_strlcpy (l.ref_key, ref_key ? ref_key : "", sizeof l.ref_key);
  l.unit = unit;
  l.mbps_size = mbps;
  g_array_append_val (lines, l);
}

static const char *
size_name (gsize size, char *buf, gsize n)
{
  if (size >= 1024)
    g_snprintf (buf, n, "%zu KiB", size / 1024);
  else
    g_snprintf (buf, n, "%zu B", size);
  return buf;
}

static GArray *
table_lines (void)
{
  static const gsize msg_sizes[] = { 16, 256, 1024, 65536 };
  static const gsize wire_sizes[] = { 2, 16, 256, 1024 };
  static const guint counts[] = { 100, 10000, 100000 };
  GArray *lines = g_array_new (FALSE, TRUE, sizeof (Line));
  char label[64], ok[64], rk[64], sz[16];

  for (guint i = 0; i < G_N_ELEMENTS (msg_sizes); i++)
    {
      gsize s = msg_sizes[i];

      g_snprintf (label, sizeof label, "1 seal+open %s", size_name (s, sz, sizeof sz));
      g_snprintf (ok, sizeof ok, "ours.envelope.%zu.ns", s);
      g_snprintf (rk, sizeof rk, "raw.gcm.%zu.ns", s);
      add_line (lines, label, ok, "libgcrypt GCM floor", rk, UNIT_NS, s);
      g_snprintf (rk, sizeof rk, "otr.oneway.%zu.ns", s);
      add_line (lines, "", ok, "libotr one-way", rk, UNIT_NS, s);
      g_snprintf (rk, sizeof rk, "otr.alternating.%zu.ns", s);
      add_line (lines, "", ok, "libotr alternating", rk, UNIT_NS, s);
      g_snprintf (ok, sizeof ok, "ours.aead.%zu.ns", s);
      g_snprintf (rk, sizeof rk, "raw.gcm.%zu.ns", s);
      add_line (lines, "  (AEAD, handle kept)", ok, "libgcrypt GCM floor", rk, UNIT_NS, s);
      g_snprintf (ok, sizeof ok, "ours.session.%zu.ns", s);
      g_snprintf (rk, sizeof rk, "otr.oneway.%zu.ns", s);
      add_line (lines, "  (session, armored)", ok, "libotr one-way", rk, UNIT_NS, s);
    }
  add_line (lines, "2 first contact", "ours.first_contact.ns",
            "libgcrypt pk_decrypt ECDH", "raw.ecdh.ns", UNIT_NS, 0);
  add_line (lines, "", "ours.first_contact.ns",
            "libgcrypt ec_mul, secure d", "raw.ecdh_ct.ns", UNIT_NS, 0);
  add_line (lines, "", "ours.first_contact.ns", "libotr full AKE", "otr.ake.ns", UNIT_NS, 0);
  add_line (lines, "  (ECDH alone)", "ours.ecdh.ns",
            "libgcrypt ec_mul, secure d", "raw.ecdh_ct.ns", UNIT_NS, 0);
  add_line (lines, "  (for comparison)", NULL,
            "pk_decrypt, plain d", "raw.ecdh_plain.ns", UNIT_NS, 0);
  for (guint i = 0; i < G_N_ELEMENTS (wire_sizes); i++)
    {
      gsize s = wire_sizes[i];

      g_snprintf (label, sizeof label, "3 overhead %s", size_name (s, sz, sizeof sz));
      g_snprintf (ok, sizeof ok, "ours.overhead.%zu.bytes", s);
      g_snprintf (rk, sizeof rk, "otr.overhead.%zu.bytes", s);
      add_line (lines, label, ok, "libotr data message", rk, UNIT_BYTES, 0);
      g_snprintf (ok, sizeof ok, "ours.fragments400.%zu.count", s);
      g_snprintf (rk, sizeof rk, "otr.fragments400.%zu.count", s);
      add_line (lines, "  fragments at 400 B", ok, "libotr fragments", rk, UNIT_COUNT, 0);
    }
  add_line (lines, "4 identity key generation", "ours.keygen.ns",
            "libotr otrl_privkey_generate", "otr.privkey_generate.ns", UNIT_NS, 0);
  add_line (lines, "", "ours.keygen.ns", "libgcrypt P-256 genkey", "raw.keygen.ns", UNIT_NS, 0);
  for (guint i = 0; i < G_N_ELEMENTS (counts); i++)
    {
      guint n = counts[i];

      g_snprintf (label, sizeof label, "5 keyring %u load", n);
      g_snprintf (ok, sizeof ok, "ours.keyring.%u.load.ns", n);
      g_snprintf (rk, sizeof rk, "otr.fpstore.%u.load.ns", n);
      add_line (lines, label, ok, "libotr fingerprint store", rk, UNIT_NS, 0);
      g_snprintf (label, sizeof label, "  keyring %u save", n);
      g_snprintf (ok, sizeof ok, "ours.keyring.%u.save.ns", n);
      g_snprintf (rk, sizeof rk, "otr.fpstore.%u.save.ns", n);
      add_line (lines, label, ok, "libotr fingerprint store", rk, UNIT_NS, 0);
      g_snprintf (label, sizeof label, "  keyring %u peak RSS", n);
      g_snprintf (ok, sizeof ok, "ours.keyring.%u.maxrss.kib", n);
      g_snprintf (rk, sizeof rk, "otr.fpstore.%u.maxrss.kib", n);
      add_line (lines, label, ok, "libotr fingerprint store", rk, UNIT_KIB, 0);
    }
  return lines;
}

/* Protocol v2 next to libotr (bench-v2.c, bench-otr-v2.c). */
static GArray *
table_lines_v2 (void)
{
  static const gsize sizes[] = { 16, 1024 };
  GArray *lines = g_array_new (FALSE, TRUE, sizeof (Line));
  char label[64], ok[64], rk[64], sz[16];

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      gsize s = sizes[i];

      g_snprintf (label, sizeof label, "v2.1 seal+commit %s", size_name (s, sz, sizeof sz));
      g_snprintf (ok, sizeof ok, "v2.seal_commit.%zu.ns", s);
      g_snprintf (rk, sizeof rk, "otr.v2.send.%zu.ns", s);
      add_line (lines, label, ok, "libotr sending (no write)", rk, UNIT_NS, 0);
      g_snprintf (ok, sizeof ok, "v2.seal.%zu.ns", s);
      add_line (lines, "  (seal alone)", ok, "libotr sending (no write)", rk, UNIT_NS, 0);
    }
  add_line (lines, "  (commit alone)", "v2.commit.ns", "fdatasync of 4 KiB",
            "part.fdatasync.ns", UNIT_NS, 0);
  add_line (lines, "  session send 16 B", "v2.session_send.16.ns", "libotr sending (no write)",
            "otr.v2.send.16.ns", UNIT_NS, 0);
  add_line (lines, "  session send 1 KiB", "v2.session_send.1024.ns",
            "libotr sending (no write)", "otr.v2.send.1024.ns", UNIT_NS, 0);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      gsize s = sizes[i];

      g_snprintf (label, sizeof label, "v2.2 turn %s unprepared", size_name (s, sz, sizeof sz));
      g_snprintf (ok, sizeof ok, "v2.turn.%zu.ns", s);
      g_snprintf (rk, sizeof rk, "otr.v2.turn.%zu.ns", s);
      add_line (lines, label, ok, "libotr alternating turn", rk, UNIT_NS, 0);
      g_snprintf (ok, sizeof ok, "v2.turn_prepared.%zu.ns", s);
      add_line (lines, "  prepared: critical path", ok, "libotr alternating turn", rk, UNIT_NS, 0);
      g_snprintf (ok, sizeof ok, "v2.turn_prepared_total.%zu.ns", s);
      add_line (lines, "  prepared: all CPU", ok, "libotr alternating turn", rk, UNIT_NS, 0);
      g_snprintf (ok, sizeof ok, "v2.turn_prepared_commit.%zu.ns", s);
      add_line (lines, "  path + 4 commits", ok, "libotr alternating turn", rk, UNIT_NS, 0);
      g_snprintf (ok, sizeof ok, "v2.turn_prepared_commit_total.%zu.ns", s);
      add_line (lines, "  all + 6 commits", ok, "libotr alternating turn", rk, UNIT_NS, 0);
      g_snprintf (ok, sizeof ok, "v2.session_turn.%zu.ns", s);
      if (s == 16)
        add_line (lines, "  session, 4 saves", ok, "libotr alternating turn", rk, UNIT_NS, 0);
    }
  add_line (lines, "v2.3 start, prekey checked", "v2.start_verify.ns", "libotr full AKE",
            "otr.v2.ake.ns", UNIT_NS, 0);
  add_line (lines, "  (without the check)", "v2.start.ns", "libotr full AKE", "otr.v2.ake.ns",
            UNIT_NS, 0);
  add_line (lines, "  (initiator half)", "v2.start_initiator.ns", NULL, NULL, UNIT_NS, 0);
  add_line (lines, "  (responder half)", "v2.start_responder.ns", NULL, NULL, UNIT_NS, 0);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      gsize s = sizes[i];

      g_snprintf (label, sizeof label, "v2.4 overhead %s", size_name (s, sz, sizeof sz));
      g_snprintf (ok, sizeof ok, "v2.wire.%zu.bytes", s);
      g_snprintf (rk, sizeof rk, "otr.overhead.%zu.bytes", s);
      add_line (lines, label, ok, "libotr data message", rk, UNIT_BYTES, 0);
      g_snprintf (ok, sizeof ok, "v2.wire_start.%zu.bytes", s);
      add_line (lines, "  (with start prefix)", ok, "libotr data message", rk, UNIT_BYTES, 0);
    }
  add_line (lines, "part P-256 ECDH", "part.p256_ecdh.ns", "libotr DH-1536 session",
            "otr.v2.part.dh_session.ns", UNIT_NS, 0);
  add_line (lines, "part P-256 key generation", "part.p256_keygen.ns", "libotr DH-1536 keypair",
            "otr.v2.part.dh_keygen.ns", UNIT_NS, 0);
  add_line (lines, "part prekey record check", "v2.prekey_verify.ns", "libotr DSA-1024 verify",
            "otr.v2.part.dsa_verify.ns", UNIT_NS, 0);
  add_line (lines, "", NULL, "libotr DSA-1024 sign", "otr.v2.part.dsa_sign.ns", UNIT_NS, 0);
  add_line (lines, "part fdatasync of 4 KiB", "part.fdatasync.ns", "libotr fingerprint write",
            "otr.v2.fpwrite.ns", UNIT_NS, 0);
  add_line (lines, "  (appended 4 KiB)", "part.fdatasync_append.ns", NULL, NULL, UNIT_NS, 0);
  add_line (lines, "part GCM handle, per msg", "part.gcm_new.ns", NULL, NULL, UNIT_NS, 0);
  add_line (lines, "part HMAC handle, per msg", "part.hmac_open.ns", NULL, NULL, UNIT_NS, 0);
  return lines;
}

static void
print_table (GHashTable *r, gboolean have_otr, GArray *lines)
{

  printf ("\n%-26s %-24s %-29s %-24s %8s\n", "row", "ours", "reference", "ref figure", "ours/ref");
  printf ("%-26s %-24s %-29s %-24s %8s\n", "---", "----", "---------", "----------", "--------");
  for (guint i = 0; i < lines->len; i++)
    {
      Line *l = &g_array_index (lines, Line, i);
      double ov = 0, rv = 0;
      gboolean have_o = l->ours_key[0] && bench_lookup (r, l->ours_key, &ov);
      gboolean have_r = bench_lookup (r, l->ref_key, &rv);
      char obuf[40] = "", rbuf[40], ratio[16] = "";

      /* Rows not run in this mode (100,000 buddies in quick mode). */
      if (!have_o && !have_r)
        continue;
      if (have_o)
        format_value (obuf, sizeof obuf, ov, l->unit, l->mbps_size);
      else if (l->ours_key[0])
        g_strlcpy (obuf, "n/a", sizeof obuf);
      if (have_r)
        format_value (rbuf, sizeof rbuf, rv, l->unit, l->mbps_size);
      else if (g_str_has_prefix (l->ref_key, "otr.") && !have_otr)
        g_strlcpy (rbuf, "skipped (no libotr)", sizeof rbuf);
      else if (l->ref_key[0] == '\0')
        rbuf[0] = '\0';
      else if (strstr (l->ref_key, "fpstore.100000"))
        g_strlcpy (rbuf, "not run: O(n^2) load", sizeof rbuf);
      else
        g_strlcpy (rbuf, "n/a", sizeof rbuf);
      if (have_o && have_r && rv != 0)
        g_snprintf (ratio, sizeof ratio, "%.3g", ov / rv);
      printf ("%-26s %-24s %-29s %-24s %8s\n", l->label, obuf, l->ref_name, rbuf, ratio);
    }
}

/* The targets, judged on this run's figures. */
static void
print_targets (GHashTable *r)
{
  double a, b, c;

  printf ("\ntargets\n");
  if (bench_lookup (r, "ours.envelope.1024.ns", &a) && bench_lookup (r, "raw.gcm.1024.ns", &b))
    printf ("  row 1, 1 KiB within 2x of the libgcrypt floor: %s (%.2fx)\n",
            a <= 2 * b ? "met" : "MISSED", a / b);
  if (bench_lookup (r, "ours.envelope.1024.ns", &a) && bench_lookup (r, "otr.oneway.1024.ns", &b))
    printf ("  row 1, 1 KiB faster than libotr one-way: %s (%.0f ns vs %.0f ns)\n",
            a < b ? "met" : "MISSED", a, b);
  if (bench_lookup (r, "ours.first_contact.ns", &a) && bench_lookup (r, "raw.ecdh.ns", &b))
    printf ("  row 2 within 1.2x of libgcrypt ECDH via gcry_pk_decrypt: %s (%.2fx)\n",
            a <= 1.2 * b ? "met" : "MISSED", a / b);
  if (bench_lookup (r, "ours.first_contact.ns", &a) && bench_lookup (r, "raw.ecdh_ct.ns", &b))
    printf ("  row 2 within 1.2x of libgcrypt's constant-time ECDH (ec_mul, secure d): %s (%.2fx)\n",
            a <= 1.2 * b ? "met" : "MISSED", a / b);
  printf ("  row 2 constant-time ECDH: checked by bench/callgrind-ecdh.sh\n");
  if (bench_lookup (r, "ours.overhead.16.bytes", &a) && bench_lookup (r, "otr.overhead.16.bytes", &b))
    printf ("  row 3, 16 B overhead at most 1/5 of libotr's: %s (%.0f B vs %.0f B, %.2f)\n",
            a * 5 <= b ? "met" : "MISSED", a, b, a / b);
  if (bench_lookup (r, "v2.turn_prepared.16.ns", &a) && bench_lookup (r, "otr.v2.turn.16.ns", &b))
    printf ("  v2 row 2, alternating turn (prepared) at most 1/2 of libotr's: %s (%.2f)\n",
            a * 2 <= b ? "met" : "MISSED", a / b);
  if (bench_lookup (r, "v2.turn.16.ns", &a) && bench_lookup (r, "otr.v2.turn.16.ns", &b))
    printf ("  v2 row 2, alternating turn (not prepared) at most 1/2 of libotr's: %s (%.2f)\n",
            a * 2 <= b ? "met" : "MISSED", a / b);
  if (bench_lookup (r, "v2.wire.16.bytes", &a) && bench_lookup (r, "otr.overhead.16.bytes", &b))
    printf ("  v2 row 4, 16 B overhead at most 1/2 of libotr's: %s (%.0f B vs %.0f B, %.2f)\n",
            a * 2 <= b ? "met" : "MISSED", a, b, a / b);
  if (bench_lookup (r, "ours.keyring.10000.load.ns", &a)
      && bench_lookup (r, "ours.keyring.10000.save.ns", &c))
    printf ("  row 5, 10,000 buddies load < 50 ms and save < 100 ms: %s (%.1f ms, %.1f ms)\n",
            a < 50e6 && c < 100e6 ? "met" : "MISSED", a / 1e6, c / 1e6);
}

/* ---- libotr child ------------------------------------------------------ */

static gboolean
run_otr (BenchRun *run, const char *otr_path)
{
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) res = NULL;
  char *argv[] = { (char *) otr_path, (char *) "--workdir", (char *) run->workdir,
                   run->quick ? (char *) "--quick" : NULL, NULL };
  GHashTableIter it;
  gpointer k, v;
  long rss;

  fprintf (stderr, "bench: running %s\n", otr_path);
  if (!bench_run_child (argv, &out, &rss, &error))
    {
      fprintf (stderr, "bench: libotr rows failed: %s\n", error->message);
      return FALSE;
    }
  res = bench_parse_results (out);
  g_hash_table_iter_init (&it, res);
  while (g_hash_table_iter_next (&it, &k, &v))
    bench_record (run, k, *(double *) v);
  return TRUE;
}

int
main (int argc, char **argv)
{
  BenchRun run = { 0 };
  const char *otr_path = NULL, *callgrind = NULL;
  gboolean raw = FALSE, have_otr = FALSE;
  guint key_index = 0, repeat = 1;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr (GError) error = NULL;

  if (!e2ee_gcrypt_init (&error))
    {
      fprintf (stderr, "bench: %s\n", error->message);
      return 1;
    }
  if (argc >= 2 && strcmp (argv[1], "--keyring-child") == 0)
    return bench_keyring_child (argc - 2, argv + 2);
  /* CI sets this so that the one meson benchmark() runs the short form. */
  run.quick = g_strcmp0 (g_getenv ("E2EE_BENCH_QUICK"), "1") == 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--quick") == 0)
        run.quick = TRUE;
      else if (strcmp (argv[i], "--raw") == 0)
        raw = TRUE;
      else if (strcmp (argv[i], "--workdir") == 0 && i + 1 < argc)
        run.workdir = argv[++i];
      else if (strcmp (argv[i], "--otr") == 0 && i + 1 < argc)
        otr_path = argv[++i];
      else if (strcmp (argv[i], "--callgrind") == 0 && i + 1 < argc)
        callgrind = argv[++i];
      else if (strcmp (argv[i], "--key") == 0 && i + 1 < argc)
        key_index = (guint) atoi (argv[++i]);
      else if (strcmp (argv[i], "--repeat") == 0 && i + 1 < argc)
        repeat = (guint) atoi (argv[++i]);
      else
        {
          fprintf (stderr,
                   "usage: %s [--quick] [--workdir DIR] [--otr PATH] [--raw]\n"
                   "       %s --callgrind TARGET [--key N] [--repeat N]\n", argv[0], argv[0]);
          return 2;
        }
    }
  if (callgrind)
    return bench_callgrind (callgrind, key_index, repeat);

  if (self == NULL)
    {
      fprintf (stderr, "bench: cannot find this executable\n");
      return 1;
    }
  run.self = self;
  if (run.workdir == NULL)
    run.workdir = g_get_tmp_dir ();
  g_mkdir_with_parents (run.workdir, 0700);
  run.results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  fprintf (stderr, "bench: %s mode, libgcrypt %s, work folder %s\n",
           run.quick ? "quick" : "full", gcry_check_version (NULL), run.workdir);
  if (otr_path && g_file_test (otr_path, G_FILE_TEST_IS_EXECUTABLE))
    run.otr = otr_path;
  bench_rows_message (&run);
  bench_rows_session (&run);
  bench_rows_first_contact (&run);
  bench_rows_wire (&run);
  bench_rows_keygen (&run);
  bench_rows_keyring (&run);
  bench_rows_v2 (&run);
  if (run.otr)
    have_otr = run_otr (&run, otr_path);
  else
    fprintf (stderr, "bench: libotr not available: its reference rows are skipped\n");

  printf ("purple-e2ee benchmark (%s mode; medians; libgcrypt %s; libotr %s)\n",
          run.quick ? "quick" : "full", gcry_check_version (NULL),
          have_otr ? BENCH_OTR_VERSION : "not built");
  {
    g_autoptr (GArray) lines = table_lines ();
    g_autoptr (GArray) lines_v2 = table_lines_v2 ();

    print_table (run.results, have_otr, lines);
    printf ("\nprotocol v2 (Double Ratchet, X3DH with a signed prekey) next to libotr\n");
    print_table (run.results, have_otr, lines_v2);
  }
  print_targets (run.results);
  if (raw)
    {
      g_autoptr (GList) keys = g_hash_table_get_keys (run.results);

      printf ("\nraw results\n");
      keys = g_list_sort (keys, (GCompareFunc) strcmp);
      for (GList *l = keys; l; l = l->next)
        printf ("%s %.6g\n", (char *) l->data,
                *(double *) g_hash_table_lookup (run.results, l->data));
    }
  g_hash_table_unref (run.results);
  return 0;
}
