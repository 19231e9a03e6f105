/* purple-e2ee benchmarks — protocol v2 as the plugin runs it: the session
 * layer (e2ee_context_encrypt / e2ee_context_receive: v2 envelope, armor,
 * session lookup) with the plugin's commit, e2ee_keyring_save on the real
 * SQLite keyring, passphrase-protected so that every stored state blob is
 * sealed (AES-256-GCM) as on a user's machine.  Next to the ratchet-level
 * rows of bench-v2.c and bench-v2-commit.c, which use a plain table.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bench-util.h"
#include "bench-v2.h"
#include "e2ee-keyring.h"
#include "e2ee-session.h"

#define PROTO "prpl-jabber"
#define ALICE "alice@example.org"
#define BOB "bob@example.org"
#define CAROL "carol@example.org"

typedef struct {
  E2eeContext *ctx;
  E2eeAccountRecord *account;
  const char *name;
} Party;

/* Alice sends to Carol one way (Carol never reads again, so Alice's chain
 * to her only grows) and takes turns with Bob.  Carol's keyring is not
 * measured: in memory, no commit. */
struct _BenchV2Session {
  Party a, b, c;
  char *dir;
  char *text[2];
  gsize len[2];
  gint64 now;
  BenchCase cases[3];
};

/* The plugin's commit (plugin/e2ee-plugin.c): save the keyring. */
static gboolean
commit_save (E2eeContext *ctx, gpointer user_data, GError **error)
{
  return e2ee_keyring_save (e2ee_context_get_keyring (ctx), error);
}

static void
party_init (Party *p, const char *dir, const char *name, gboolean durable)
{
  g_autofree char *file = g_strconcat (name, ".sqlite", NULL);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  E2eeKeyring *kr;
  GError *error = NULL;

  p->name = name;
  kr = e2ee_keyring_new (path);
  /* Argon2id once here; then one AES-GCM per stored secret. */
  if (durable && !e2ee_keyring_set_passphrase (kr, "bench passphrase", &error))
    bench_v2_die ("e2ee_keyring_set_passphrase", error);
  p->ctx = e2ee_context_new (kr);
  if (durable)
    e2ee_context_set_commit_func (p->ctx, commit_save, NULL);
  p->account = e2ee_context_ensure_account_saved (p->ctx, PROTO, name, NULL, &error);
  if (p->account == NULL)
    bench_v2_die ("e2ee_context_ensure_account_saved", error);
}

static void
party_learn (Party *to, Party *from)
{
  GPtrArray *keys = e2ee_context_own_keyset (from->ctx, from->account);

  if (e2ee_context_learn_keys (to->ctx, to->account, from->name, keys, NULL)
      != E2EE_LEARN_FIRST_CONTACT)
    bench_v2_die ("e2ee_context_learn_keys", NULL);
  g_ptr_array_unref (keys);
}

static char *
send_one (Party *from, Party *to, const char *text)
{
  GError *error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to->name, text, 0, &error);
  char *wire;

  if (pieces == NULL || pieces[0] == NULL || pieces[1] != NULL)
    bench_v2_die ("e2ee_context_encrypt (one piece)", error);
  wire = pieces[0];
  pieces[0] = NULL;
  g_strfreev (pieces);
  return wire;
}

static void
receive_one (BenchV2Session *s, Party *from, Party *to, const char *wire, gsize len)
{
  E2eeRecvResult res = { 0 };

  e2ee_context_receive (to->ctx, to->account, from->name, wire, s->now, &res);
  if (res.kind != E2EE_RECV_MESSAGE || strlen (res.plaintext) != len)
    bench_v2_die ("e2ee_context_receive", res.error);
  e2ee_recv_result_clear (&res);
}

static void
message (BenchV2Session *s, Party *from, Party *to, guint size)
{
  char *wire = send_one (from, to, s->text[size]);

  receive_one (s, from, to, wire, s->len[size]);
  g_free (wire);
}

/* Alice sends on her existing chain; her commit is inside. */
static void
send_iter_16 (gpointer data, guint iters)
{
  BenchV2Session *s = data;

  for (guint i = 0; i < iters; i++)
    g_free (send_one (&s->a, &s->c, s->text[0]));
}

static void
send_iter_1024 (gpointer data, guint iters)
{
  BenchV2Session *s = data;

  for (guint i = 0; i < iters; i++)
    g_free (send_one (&s->a, &s->c, s->text[1]));
}

/* A sends, B receives, B answers, A receives: four commits. */
static void
turn_iter (gpointer data, guint iters)
{
  BenchV2Session *s = data;

  for (guint i = 0; i < iters; i++)
    {
      message (s, &s->a, &s->b, 0);
      message (s, &s->b, &s->a, 0);
    }
}

/* Each run starts from new keyrings and leaves none behind. */
static void
remove_keyrings (const char *dir)
{
  static const char *names[3] = { ALICE, BOB, CAROL };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *db = g_strdup_printf ("%s/%s.sqlite", dir, names[i]);
      g_autofree char *wal = g_strconcat (db, "-wal", NULL);
      g_autofree char *shm = g_strconcat (db, "-shm", NULL);

      g_unlink (db);
      g_unlink (wal);
      g_unlink (shm);
    }
}

BenchV2Session *
bench_v2_session_new (BenchRun *run)
{
  BenchV2Session *s = g_new0 (BenchV2Session, 1);
  BenchCase cases[3] = {
    { "v2.session_send.16.ns", send_iter_16, s, 0, NULL, 0 },
    { "v2.session_send.1024.ns", send_iter_1024, s, 0, NULL, 0 },
    { "v2.session_turn.16.ns", turn_iter, s, 0, NULL, 0 },
  };

  /* The keyring refuses a folder others may open. */
  s->dir = g_build_filename (run->workdir, "v2-keyrings", NULL);
  g_mkdir_with_parents (s->dir, 0700);
  g_chmod (s->dir, 0700);
  remove_keyrings (s->dir);
  for (guint i = 0; i < 2; i++)
    {
      s->len[i] = i ? 1024 : 16;
      s->text[i] = g_malloc (s->len[i] + 1);
      bench_fill_text (s->text[i], s->len[i]);
      s->text[i][s->len[i]] = '\0';
    }
  s->now = g_get_real_time () / G_USEC_PER_SEC;
  party_init (&s->a, s->dir, ALICE, TRUE);
  party_init (&s->b, s->dir, BOB, TRUE);
  party_init (&s->c, s->dir, CAROL, FALSE);
  party_learn (&s->a, &s->b);
  party_learn (&s->b, &s->a);
  party_learn (&s->a, &s->c);
  party_learn (&s->c, &s->a);
  /* The start, the reply, Alice's step: her chains exist. */
  for (guint i = 0; i < 2; i++)
    {
      Party *peer = i ? &s->c : &s->b;

      message (s, &s->a, peer, 0);
      message (s, peer, &s->a, 0);
      message (s, &s->a, peer, 0);
    }
  memcpy (s->cases, cases, sizeof cases);
  return s;
}

void
bench_v2_session_round (BenchV2Session *s, guint max_reps, gint64 target_ns)
{
  bench_run_round (s->cases, G_N_ELEMENTS (s->cases), max_reps, target_ns);
}

void
bench_v2_session_record (BenchV2Session *s, BenchRun *run)
{
  for (guint i = 0; i < G_N_ELEMENTS (s->cases); i++)
    bench_record (run, s->cases[i].key,
                  bench_median (s->cases[i].samples, s->cases[i].n_samples));
}

void
bench_v2_session_free (BenchV2Session *s)
{
  for (guint i = 0; i < G_N_ELEMENTS (s->cases); i++)
    bench_case_clear (&s->cases[i]);
  e2ee_context_free (s->a.ctx);
  e2ee_context_free (s->b.ctx);
  e2ee_context_free (s->c.ctx);
  for (guint i = 0; i < 2; i++)
    g_free (s->text[i]);
  remove_keyrings (s->dir);
  g_free (s->dir);
  g_free (s);
}
