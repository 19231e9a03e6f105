/* purple-e2ee benchmarks — protocol v2 (docs/PROTOCOL.md): the parties,
 * the session start with a signed prekey, the armored size of a message,
 * the P-256 operations that dominate the rows, and the rounds that
 * interleave all v2 cases with the libotr program.  Row 1 (the durable
 * commit) is bench-v2-commit.c, row 2 (turns) bench-v2-turn.c; libotr's
 * side of every row is bench-otr-v2.c.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bench-util.h"
#include "bench-v2.h"
#include "e2ee-b64.h"
#include "e2ee-wipe.h"

#define ACCOUNT_A "prpl-jabber:alice@example.org"
#define ACCOUNT_B "prpl-jabber:bob@example.org"
#define SPK_ID 1
/* Byte 0 of a single-recipient v2 envelope without padding
 * (docs/PROTOCOL.md, the v2 envelope): then one ratchet message. */
#define ENVELOPE_V2_SINGLE 0x20

void
bench_v2_die (const char *what, GError *error)
{
  fprintf (stderr, "bench: %s failed: %s\n", what, error ? error->message : "(no error)");
  exit (1);
}

static guint32
device_tag (const E2eeKey *key)
{
  const guint8 *id = e2ee_key_get_device_id (key);

  return (guint32) id[0] << 24 | (guint32) id[1] << 16 | (guint32) id[2] << 8 | id[3];
}

void
bench_v2_ids_init (BenchV2Ids *ids)
{
  GError *error = NULL;

  memset (ids, 0, sizeof *ids);
  ids->now = (guint64) (g_get_real_time () / G_USEC_PER_SEC);
  if (!(ids->ik_a = e2ee_key_generate (&error)) || !(ids->ik_b = e2ee_key_generate (&error)))
    bench_v2_die ("e2ee_key_generate", error);
  ids->a_pub = e2ee_key_public_copy (ids->ik_a);
  ids->b_pub = e2ee_key_public_copy (ids->ik_b);
  ids->dev_a = device_tag (ids->ik_a);
  ids->dev_b = device_tag (ids->ik_b);
  if (!(ids->sig_b = e2ee_sign_key_generate (&error)))
    bench_v2_die ("e2ee_sign_key_generate", error);
  if (!e2ee_prekey_create (ids->sig_b, ids->ik_b, ids->dev_b, SPK_ID, ids->now,
                           E2EE_V2_VERSIONS, &ids->spk_b, &ids->record_b, &error))
    bench_v2_die ("e2ee_prekey_create", error);
  ids->pk_b = e2ee_prekey_verify (g_bytes_get_data (ids->record_b, NULL),
                                  g_bytes_get_size (ids->record_b),
                                  e2ee_sign_key_get_public (ids->sig_b), ids->b_pub,
                                  ids->dev_b, ids->now, &error);
  if (ids->pk_b == NULL)
    bench_v2_die ("e2ee_prekey_verify", error);
}

void
bench_v2_ids_clear (BenchV2Ids *ids)
{
  e2ee_key_unref (ids->ik_a);
  e2ee_key_unref (ids->ik_b);
  e2ee_key_unref (ids->a_pub);
  e2ee_key_unref (ids->b_pub);
  e2ee_sign_key_free (ids->sig_b);
  e2ee_ec_secret_free (ids->spk_b);
  g_bytes_unref (ids->record_b);
  e2ee_prekey_free (ids->pk_b);
}

void
bench_v2_open_check (E2eeRatchet *to, GBytes *msg, guint64 now, gsize len)
{
  GError *error = NULL;
  GBytes *pt = e2ee_ratchet_open (to, g_bytes_get_data (msg, NULL), g_bytes_get_size (msg),
                                  now, NULL, &error);

  if (pt == NULL)
    bench_v2_die ("e2ee_ratchet_open", error);
  if (g_bytes_get_size (pt) != len)
    bench_v2_die ("e2ee_ratchet_open length", NULL);
  e2ee_bytes_free (pt);
}

/* Alice's half: X3DH (a new ephemeral key, three ECDH), her session and
 * the first message. */
static GBytes *
start_initiator (const BenchV2Ids *ids, const char *text, gsize len, E2eeRatchet **a)
{
  E2eeX3dhParty self = { ids->ik_a, ACCOUNT_A, ids->dev_a, E2EE_V2_VERSIONS };
  E2eeX3dhParty peer = { ids->b_pub, ACCOUNT_B, ids->dev_b, E2EE_V2_VERSIONS };
  E2eeX3dhResult r;
  E2eeEcSecret *ek = NULL;
  GError *error = NULL;
  GBytes *first;

  if (!e2ee_x3dh_initiate (&self, &peer, ids->pk_b, &ek, &r, &error))
    bench_v2_die ("e2ee_x3dh_initiate", error);
  *a = e2ee_ratchet_new_initiator (&r, ek, ids->a_pub, E2EE_V2_VERSIONS, ids->dev_a, ids->dev_b);
  e2ee_x3dh_result_clear (&r);
  if (!(first = e2ee_ratchet_seal (*a, (const guint8 *) text, len, &error)))
    bench_v2_die ("e2ee_ratchet_seal (first)", error);
  return first;
}

/* Bob's half: parse the start, its replay tag, X3DH (three ECDH), his
 * session, the first message opened. */
static void
start_responder (const BenchV2Ids *ids, GBytes *first, gsize len, E2eeRatchet **b)
{
  E2eeV2Message m;
  E2eeX3dhResult r;
  guint8 tag[32];
  GError *error = NULL;

  if (!e2ee_v2_message_parse (g_bytes_get_data (first, NULL), g_bytes_get_size (first), &m,
                              &error))
    bench_v2_die ("e2ee_v2_message_parse", error);
  if (m.type != E2EE_V2_TYPE_START || m.mode != E2EE_X3DH_MODE_PREKEY || m.spk_id != SPK_ID)
    bench_v2_die ("start message", NULL);
  e2ee_x3dh_replay_tag ((E2eeX3dhMode) m.mode, m.spk_id, m.dh_key, tag);
  {
    E2eeX3dhParty self = { ids->ik_b, ACCOUNT_B, ids->dev_b, E2EE_V2_VERSIONS };
    E2eeX3dhParty peer = { m.initiator, ACCOUNT_A, m.sender_device, m.versions };

    if (!e2ee_x3dh_respond (&self, &peer, (E2eeX3dhMode) m.mode, ids->spk_b, m.spk_id,
                            m.dh_key, &r, &error))
      bench_v2_die ("e2ee_x3dh_respond", error);
    *b = e2ee_ratchet_new_responder (&r, m.dh_key, ids->dev_b, m.sender_device);
  }
  e2ee_x3dh_result_clear (&r);
  e2ee_v2_message_clear (&m);
  bench_v2_open_check (*b, first, ids->now, len);
}

void
bench_v2_start (const BenchV2Ids *ids, const char *text, gsize len, E2eeRatchet **a,
                E2eeRatchet **b)
{
  GBytes *first = start_initiator (ids, text, len, a);

  start_responder (ids, first, len, b);
  g_bytes_unref (first);
}

/* ---- parts: what the rows are made of ------------------------------------ */

typedef struct {
  E2eeEcSecret *secret;
  E2eeKey *peer;
  const BenchV2Ids *ids;
} PartBench;

static void
part_ecdh_iter (gpointer data, guint iters)
{
  PartBench *p = data;
  guint8 out[32];
  GError *error = NULL;

  for (guint i = 0; i < iters; i++)
    if (!e2ee_ec_secret_ecdh (p->secret, p->peer, out, &error))
      bench_v2_die ("e2ee_ec_secret_ecdh", error);
  e2ee_wipe (out, sizeof out);
}

static void
part_keygen_iter (gpointer data, guint iters)
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

/* The initiator's check of a published prekey record: parse, ECDSA
 * verification under the pinned signing key, identity, device, expiry. */
static void
prekey_verify_iter (gpointer data, guint iters)
{
  PartBench *p = data;
  const BenchV2Ids *ids = p->ids;
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

/* ---- v2 row 3: session start --------------------------------------------- */

typedef struct {
  const BenchV2Ids *ids;
  GBytes *first;           /* for the responder-only case */
} StartBench;

static const char start_text[] = "hello, first msg";   /* 16 bytes */

static void
start_iter (gpointer data, guint iters)
{
  StartBench *s = data;

  for (guint i = 0; i < iters; i++)
    {
      E2eeRatchet *a = NULL, *b = NULL;

      bench_v2_start (s->ids, start_text, sizeof start_text - 1, &a, &b);
      e2ee_ratchet_free (a);
      e2ee_ratchet_free (b);
    }
}

static void
start_verify_iter (gpointer data, guint iters)
{
  StartBench *s = data;
  PartBench p = { NULL, NULL, s->ids };

  for (guint i = 0; i < iters; i++)
    {
      prekey_verify_iter (&p, 1);
      start_iter (s, 1);
    }
}

static void
start_initiator_iter (gpointer data, guint iters)
{
  StartBench *s = data;

  for (guint i = 0; i < iters; i++)
    {
      E2eeRatchet *a = NULL;
      GBytes *first = start_initiator (s->ids, start_text, sizeof start_text - 1, &a);

      g_bytes_unref (first);
      e2ee_ratchet_free (a);
    }
}

/* Bob answers the same start again and again: no replay check here
 * (the tag is computed, not remembered), so each run is a fresh answer. */
static void
start_responder_iter (gpointer data, guint iters)
{
  StartBench *s = data;

  for (guint i = 0; i < iters; i++)
    {
      E2eeRatchet *b = NULL;

      start_responder (s->ids, s->first, sizeof start_text - 1, &b);
      e2ee_ratchet_free (b);
    }
}

#define N_START 7

typedef struct {
  StartBench s;
  PartBench p;
  E2eeEcSecret *secret, *other;
  E2eeRatchet *a;
  BenchCase cases[N_START];
} StartGroup;

static void
start_group_init (StartGroup *g, const BenchV2Ids *ids)
{
  GError *error = NULL;
  BenchCase cases[N_START] = {
    { "v2.start.ns", start_iter, &g->s, 0, NULL, 0 },
    { "v2.start_verify.ns", start_verify_iter, &g->s, 0, NULL, 0 },
    { "v2.start_initiator.ns", start_initiator_iter, &g->s, 0, NULL, 0 },
    { "v2.start_responder.ns", start_responder_iter, &g->s, 0, NULL, 0 },
    { "v2.prekey_verify.ns", prekey_verify_iter, &g->p, 0, NULL, 0 },
    { "part.p256_ecdh.ns", part_ecdh_iter, &g->p, 0, NULL, 0 },
    { "part.p256_keygen.ns", part_keygen_iter, NULL, 0, NULL, 0 },
  };

  memset (g, 0, sizeof *g);
  if (!(g->secret = e2ee_ec_secret_generate (&error))
      || !(g->other = e2ee_ec_secret_generate (&error)))
    bench_v2_die ("e2ee_ec_secret_generate", error);
  g->p.secret = g->secret;
  g->p.peer = e2ee_ec_secret_get_public (g->other);
  g->p.ids = ids;
  g->s.ids = ids;
  g->s.first = start_initiator (ids, start_text, sizeof start_text - 1, &g->a);
  memcpy (g->cases, cases, sizeof cases);
}

static void
start_group_record (StartGroup *g, BenchRun *run)
{
  for (guint i = 0; i < N_START; i++)
    bench_record (run, g->cases[i].key, bench_median (g->cases[i].samples, g->cases[i].n_samples));
}

static void
start_group_clear (StartGroup *g)
{
  for (guint i = 0; i < N_START; i++)
    bench_case_clear (&g->cases[i]);
  g_bytes_unref (g->s.first);
  e2ee_ratchet_free (g->a);
  e2ee_ec_secret_free (g->secret);
  e2ee_ec_secret_free (g->other);
}

/* ---- v2 row 4: wire size -------------------------------------------------- */

/* "?E2E:" + base64url(envelope byte 0 || ratchet message), from real
 * sealed bytes. */
static gsize
armored_len (GBytes *ratchet_msg)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (ratchet_msg, &len);
  g_autofree guint8 *env = g_malloc (len + 1);
  g_autofree char *b64 = NULL;
  g_autofree char *armored = NULL;

  env[0] = ENVELOPE_V2_SINGLE;
  memcpy (env + 1, data, len);
  b64 = e2ee_b64url_encode (env, len + 1);
  armored = g_strconcat ("?E2E:", b64, NULL);
  return strlen (armored);
}

static void
rows_wire (BenchRun *run, const BenchV2Ids *ids)
{
  static const gsize sizes[] = { 16, 1024 };
  GError *error = NULL;

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      gsize len = sizes[s];
      g_autofree char *text = g_malloc (len + 1);
      E2eeRatchet *a = NULL, *b = NULL;
      GBytes *first, *reply, *next;
      char key[64];

      bench_fill_text (text, len);
      text[len] = '\0';
      /* The first message carries the start prefix (type 2); after Bob's
       * reply, Alice's messages are type 1. */
      first = start_initiator (ids, text, len, &a);
      start_responder (ids, first, len, &b);
      if (!(reply = e2ee_ratchet_seal (b, (const guint8 *) text, len, &error)))
        bench_v2_die ("e2ee_ratchet_seal", error);
      bench_v2_open_check (a, reply, ids->now, len);
      if (!(next = e2ee_ratchet_seal (a, (const guint8 *) text, len, &error)))
        bench_v2_die ("e2ee_ratchet_seal", error);
      g_snprintf (key, sizeof key, "v2.wire.%zu.bytes", len);
      bench_record (run, key, (double) armored_len (next) - (double) len);
      g_snprintf (key, sizeof key, "v2.wire_start.%zu.bytes", len);
      bench_record (run, key, (double) armored_len (first) - (double) len);
      g_snprintf (key, sizeof key, "v2.binary.%zu.bytes", len);
      bench_record (run, key, (double) g_bytes_get_size (next) + 1 - (double) len);
      g_bytes_unref (first);
      g_bytes_unref (reply);
      g_bytes_unref (next);
      e2ee_ratchet_free (a);
      e2ee_ratchet_free (b);
    }
}

/* ---- libotr's side, one round at a time -------------------------------- */

/* Runs the libotr program for one round of its v2 reference cases (one
 * sample each) and appends each value to @acc (key -> GArray of double). */
static void
otr_round (BenchRun *run, GHashTable *acc)
{
  char *argv[] = { (char *) run->otr, (char *) "--workdir", (char *) run->workdir,
                   (char *) "--v2-round", run->quick ? (char *) "--quick" : NULL, NULL };
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) res = NULL;
  GHashTableIter it;
  gpointer k, v;
  long rss;

  if (!bench_run_child (argv, &out, &rss, &error))
    {
      fprintf (stderr, "bench: libotr round failed: %s\n", error->message);
      return;
    }
  res = bench_parse_results (out);
  g_hash_table_iter_init (&it, res);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      GArray *a = g_hash_table_lookup (acc, k);

      if (a == NULL)
        {
          a = g_array_new (FALSE, FALSE, sizeof (double));
          g_hash_table_insert (acc, g_strdup (k), a);
        }
      g_array_append_val (a, *(double *) v);
    }
}

static void
otr_record (BenchRun *run, GHashTable *acc)
{
  GHashTableIter it;
  gpointer k, v;
  char key[96];

  g_hash_table_iter_init (&it, acc);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      GArray *a = v;

      g_snprintf (key, sizeof key, "otr.v2.%s", (const char *) k);
      bench_record (run, key, bench_median ((double *) (void *) a->data, a->len));
    }
}

/* Every v2 case and libotr's counterparts in rounds: one sample of each
 * of ours, then one run of the libotr program, and again; so a slow
 * patch of a shared machine hits both sides alike and the ratios hold. */
void
bench_rows_v2 (BenchRun *run)
{
  BenchV2Ids ids;
  BenchV2Commit *commit;
  BenchV2Session *session;
  BenchV2Turns *turns;
  StartGroup start;
  guint reps = run->quick ? 3 : BENCH_V2_MAX_REPS;
  gint64 target = run->quick ? 10 * 1000 * 1000 : 100 * 1000 * 1000;
  g_autoptr (GHashTable) otr = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                      (GDestroyNotify) g_array_unref);

  fprintf (stderr, "bench: protocol v2, %u rounds%s\n", reps,
           run->otr ? " interleaved with libotr" : "");
  bench_v2_ids_init (&ids);
  commit = bench_v2_commit_new (run, &ids);
  turns = bench_v2_turns_new (run, &ids);
  start_group_init (&start, &ids);
  session = bench_v2_session_new (run);
  for (guint r = 0; r < reps; r++)
    {
      bench_v2_commit_round (commit, reps, target);
      /* Turns and starts are milliseconds each: longer samples. */
      bench_v2_turns_round (turns, 2 * target);
      bench_run_round (start.cases, N_START, reps, 2 * target);
      bench_v2_session_round (session, reps, target);
      if (run->otr)
        otr_round (run, otr);
    }
  bench_v2_commit_record (commit, run);
  bench_v2_turns_record (turns, run);
  start_group_record (&start, run);
  bench_v2_session_record (session, run);
  otr_record (run, otr);
  bench_v2_commit_free (commit);
  bench_v2_turns_free (turns);
  start_group_clear (&start);
  bench_v2_session_free (session);
  rows_wire (run, &ids);
  bench_v2_ids_clear (&ids);
}
