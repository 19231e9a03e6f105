/* purple-e2ee benchmarks — protocol v2 row 1: one message including the
 * durable commit that "save before send" requires (e2ee-ratchet.h), and
 * the cost of the fdatasync underneath it.
 *
 * The store here is a plain SQLite table, not the keyring's v2 rows: the
 * same file settings as src/e2ee-store.c (WAL, synchronous=FULL,
 * secure_delete, foreign keys), one BEGIN IMMEDIATE ... COMMIT per state
 * change as the keyring makes it, but the blob is written as it is (the
 * keyring also seals it under its passphrase key: one AES-GCM of ~300
 * bytes, about 2 us, which this row leaves out).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gcrypt.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "bench-util.h"
#include "bench-v2.h"
#include "e2ee-aead.h"
#include "e2ee-wipe.h"

struct _BenchV2Store {
  sqlite3 *db;
  sqlite3_stmt *put;
  char *path;
};

static void G_GNUC_NORETURN
die_sql (BenchV2Store *s, const char *what)
{
  fprintf (stderr, "bench: SQLite %s failed: %s\n", what,
           s->db ? sqlite3_errmsg (s->db) : "cannot open");
  exit (1);
}

static void
exec_sql (BenchV2Store *s, const char *sql)
{
  if (sqlite3_exec (s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    die_sql (s, sql);
}

static void
remove_db_files (const char *path)
{
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);

  g_unlink (path);
  g_unlink (wal);
  g_unlink (shm);
}

BenchV2Store *
bench_v2_store_open (const char *path)
{
  BenchV2Store *s = g_new0 (BenchV2Store, 1);
  sqlite3_stmt *mode = NULL;
  int fd;

  s->path = g_strdup (path);
  remove_db_files (path);
  /* 0600 before SQLite sees it, as the keyring creates its file. */
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0)
    close (fd);
  if (sqlite3_open_v2 (path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)
      != SQLITE_OK)
    die_sql (s, "open");
  if (sqlite3_prepare_v2 (s->db, "PRAGMA journal_mode = WAL", -1, &mode, NULL) != SQLITE_OK
      || sqlite3_step (mode) != SQLITE_ROW
      || g_ascii_strcasecmp ((const char *) sqlite3_column_text (mode, 0), "wal") != 0)
    die_sql (s, "journal_mode = WAL");
  sqlite3_finalize (mode);
  exec_sql (s, "PRAGMA synchronous = FULL;"
               "PRAGMA foreign_keys = ON;"
               "PRAGMA secure_delete = ON;"
               "PRAGMA trusted_schema = OFF;"
               "CREATE TABLE session (id INTEGER PRIMARY KEY, state BLOB NOT NULL);");
  if (sqlite3_prepare_v2 (s->db, "INSERT OR REPLACE INTO session (id, state) VALUES (?1, ?2)",
                          -1, &s->put, NULL) != SQLITE_OK)
    die_sql (s, "prepare");
  return s;
}

void
bench_v2_store_commit (BenchV2Store *s, gint64 row, const E2eeRatchet *state)
{
  GBytes *blob = e2ee_ratchet_serialize (state);
  gsize len;
  const guint8 *data = g_bytes_get_data (blob, &len);

  exec_sql (s, "BEGIN IMMEDIATE");
  if (sqlite3_bind_int64 (s->put, 1, row) != SQLITE_OK
      || sqlite3_bind_blob (s->put, 2, data, (int) len, SQLITE_STATIC) != SQLITE_OK
      || sqlite3_step (s->put) != SQLITE_DONE)
    die_sql (s, "write state");
  sqlite3_reset (s->put);
  sqlite3_clear_bindings (s->put);
  exec_sql (s, "COMMIT");
  e2ee_bytes_free (blob);
}

void
bench_v2_store_close (BenchV2Store *s)
{
  sqlite3_finalize (s->put);
  sqlite3_close (s->db);
  remove_db_files (s->path);
  g_free (s->path);
  g_free (s);
}

/* ---- the cases ---------------------------------------------------------- */

typedef struct {
  E2eeRatchet *a;        /* Alice, on an existing sending chain */
  BenchV2Store *store;
  char *text;
  gsize len;
} CommitBench;

static void
seal_iter (gpointer data, guint iters)
{
  CommitBench *c = data;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      GBytes *m = e2ee_ratchet_seal (c->a, (const guint8 *) c->text, c->len, &error);

      if (m == NULL)
        bench_v2_die ("e2ee_ratchet_seal", error);
      g_bytes_unref (m);
    }
}

/* Save before send: seal, then the state durably, then (not here) the
 * network. */
static void
seal_commit_iter (gpointer data, guint iters)
{
  CommitBench *c = data;
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      GBytes *m = e2ee_ratchet_seal (c->a, (const guint8 *) c->text, c->len, &error);

      if (m == NULL)
        bench_v2_die ("e2ee_ratchet_seal", error);
      bench_v2_store_commit (c->store, 1, c->a);
      g_bytes_unref (m);
    }
}

static void
commit_iter (gpointer data, guint iters)
{
  CommitBench *c = data;

  for (guint i = 0; i < iters; i++)
    bench_v2_store_commit (c->store, 1, c->a);
}

/* What the seal sets up per message: a keyed AES-256-GCM handle in
 * secure memory (e2ee_aead_new) and a secure HMAC handle, both dropped
 * after the message (the message key is used once). */
static void
gcm_new_iter (gpointer data, guint iters)
{
  guint8 key[E2EE_AEAD_KEY_LEN] = { 1 };
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    {
      E2eeAead *a = e2ee_aead_new (key, &error);

      if (a == NULL)
        bench_v2_die ("e2ee_aead_new", error);
      e2ee_aead_free (a);
    }
}

static void
hmac_open_iter (gpointer data, guint iters)
{
  for (guint i = 0; i < iters; i++)
    {
      gcry_mac_hd_t hd = NULL;
      gcry_error_t err = gcry_mac_open (&hd, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL);

      if (err)
        {
          fprintf (stderr, "bench: gcry_mac_open: %s\n", gcry_strerror (err));
          exit (1);
        }
      gcry_mac_close (hd);
    }
}

/* What the commit waits for: one 4 KiB page written and made durable
 * (SQLite's WAL commit is a write and an fdatasync of the -wal file),
 * rewritten in place, or appended (the file grows, so the file system
 * also commits its metadata, as for a -wal file that is growing). */
typedef struct {
  int fd;
  gboolean append;
  off_t end;
  guint8 page[4096];
} SyncBench;

static void
fdatasync_iter (gpointer data, guint iters)
{
  SyncBench *s = data;

  for (guint i = 0; i < iters; i++)
    {
      off_t at = s->append ? s->end : 0;

      s->page[0] = (guint8) i;
      if (pwrite (s->fd, s->page, sizeof s->page, at) != (ssize_t) sizeof s->page
          || fdatasync (s->fd) != 0)
        {
          fprintf (stderr, "bench: pwrite/fdatasync: %s\n", g_strerror (errno));
          exit (1);
        }
      if (s->append)
        s->end += sizeof s->page;
    }
}

/* Both message sizes share one session and one store; the parts are
 * measured in the same rounds. */
#define N_CASES 9

struct _BenchV2Commit {
  E2eeRatchet *a, *b;
  BenchV2Store *store;
  CommitBench msg[2];
  SyncBench sync, append;
  char *sync_path, *append_path;
  BenchCase cases[N_CASES];
};

static const gsize sizes[] = { 16, 1024 };

BenchV2Commit *
bench_v2_commit_new (BenchRun *run, const BenchV2Ids *ids)
{
  BenchV2Commit *c = g_new0 (BenchV2Commit, 1);
  g_autofree char *db_path = g_build_filename (run->workdir, "v2-state.sqlite", NULL);
  GError *error = NULL;
  BenchCase cases[N_CASES] = {
    { "seal.16", seal_iter, &c->msg[0], 0, NULL, 0 },
    { "seal_commit.16", seal_commit_iter, &c->msg[0], 0, NULL, 0 },
    { "seal.1024", seal_iter, &c->msg[1], 0, NULL, 0 },
    { "seal_commit.1024", seal_commit_iter, &c->msg[1], 0, NULL, 0 },
    { "commit", commit_iter, &c->msg[0], 0, NULL, 0 },
    { "fdatasync", fdatasync_iter, &c->sync, 0, NULL, 0 },
    { "fdatasync_append", fdatasync_iter, &c->append, 0, NULL, 0 },
    { "gcm_new", gcm_new_iter, NULL, 0, NULL, 0 },
    { "hmac_open", hmac_open_iter, NULL, 0, NULL, 0 },
  };

  /* An existing chain: the start, Bob's reply, then Alice's ratchet step;
   * her further messages reuse that chain. */
  bench_v2_start (ids, "hello, first msg", 16, &c->a, &c->b);
  for (guint i = 0; i < 2; i++)
    {
      E2eeRatchet *from = i == 0 ? c->b : c->a, *to = i == 0 ? c->a : c->b;
      GBytes *m = e2ee_ratchet_seal (from, (const guint8 *) "hello, next msg.", 16, &error);

      if (m == NULL)
        bench_v2_die ("e2ee_ratchet_seal", error);
      bench_v2_open_check (to, m, ids->now, 16);
      g_bytes_unref (m);
    }
  c->store = bench_v2_store_open (db_path);
  for (guint i = 0; i < 2; i++)
    {
      c->msg[i].a = c->a;
      c->msg[i].store = c->store;
      c->msg[i].len = sizes[i];
      c->msg[i].text = g_malloc (sizes[i] + 1);
      bench_fill_text (c->msg[i].text, sizes[i]);
      c->msg[i].text[sizes[i]] = '\0';
    }
  memset (c->sync.page, 'p', sizeof c->sync.page);
  c->append = c->sync;
  c->append.append = TRUE;
  c->sync_path = g_build_filename (run->workdir, "v2-fdatasync.bin", NULL);
  c->append_path = g_build_filename (run->workdir, "v2-fdatasync-append.bin", NULL);
  c->sync.fd = open (c->sync_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  c->append.fd = open (c->append_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (c->sync.fd < 0 || c->append.fd < 0)
    bench_v2_die ("open fdatasync file", NULL);
  memcpy (c->cases, cases, sizeof cases);
  return c;
}

void
bench_v2_commit_round (BenchV2Commit *c, guint max_reps, gint64 target_ns)
{
  bench_run_round (c->cases, N_CASES, max_reps, target_ns);
}

void
bench_v2_commit_record (BenchV2Commit *c, BenchRun *run)
{
  GBytes *blob = e2ee_ratchet_serialize (c->a);
  char key[64];

  for (guint i = 0; i < N_CASES; i++)
    {
      BenchCase *k = &c->cases[i];

      /* Messages and the commit are v2 rows; the rest are parts. */
      g_snprintf (key, sizeof key, "%s.%s.ns", i < 5 ? "v2" : "part", k->key);
      bench_record (run, key, bench_median (k->samples, k->n_samples));
    }
  bench_record (run, "v2.blob.bytes", (double) g_bytes_get_size (blob));
  e2ee_bytes_free (blob);
}

void
bench_v2_commit_free (BenchV2Commit *c)
{
  for (guint i = 0; i < N_CASES; i++)
    bench_case_clear (&c->cases[i]);
  close (c->sync.fd);
  close (c->append.fd);
  g_unlink (c->sync_path);
  g_unlink (c->append_path);
  g_free (c->sync_path);
  g_free (c->append_path);
  for (guint i = 0; i < 2; i++)
    g_free (c->msg[i].text);
  bench_v2_store_close (c->store);
  e2ee_ratchet_free (c->a);
  e2ee_ratchet_free (c->b);
  g_free (c);
}
