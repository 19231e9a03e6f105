/* Helpers for the protocol v2 property tests (see e2ee-test-v2.h).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE /* memmem */
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-envelope.h"
#include "e2ee-ratchet-wire.h"
#include "e2ee-test-util.h"
#include "e2ee-test-rng.h"
#include "e2ee-test-v2.h"
#include "e2ee-wipe.h"

static char *passphrase;

void
v2_set_passphrase (const char *text)
{
  g_free (passphrase);
  passphrase = g_strdup (text);
}

static gint64
read_clock (gpointer data)
{
  return *(gint64 *) data;
}

static gboolean
commit_save (E2eeContext *ctx, gpointer data, GError **error)
{
  V2Peer *peer = data;

  if (!e2ee_keyring_save (e2ee_context_get_keyring (ctx), error))
    return FALSE;
  peer->commits++;
  return TRUE;
}

static void
peer_attach (V2Peer *peer, E2eeKeyring *keyring)
{
  peer->ctx = e2ee_context_new (keyring);
  e2ee_context_set_commit_func (peer->ctx, commit_save, peer);
  if (peer->clock != NULL)
    e2ee_context_set_clock (peer->ctx, read_clock, peer->clock);
}

static V2Peer *
peer_make (const char *dir, const char *name, gint64 *clock, gboolean create)
{
  V2Peer *peer = g_new0 (V2Peer, 1);
  GError *error = NULL;
  E2eeKeyring *keyring;
  gboolean created = FALSE;

  peer->dir = g_strdup (dir);
  peer->path = g_build_filename (dir, "keyring.json", NULL);
  peer->name = g_strdup (name);
  peer->clock = clock;
  if (create)
    g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  keyring = e2ee_keyring_load (peer->path, create ? NULL : passphrase, &error);
  g_assert_no_error (error);
  if (create && passphrase != NULL)
    {
      g_assert_true (e2ee_keyring_set_passphrase (keyring, passphrase, &error));
      g_assert_no_error (error);
    }
  peer_attach (peer, keyring);
  peer->account = e2ee_context_ensure_account_saved (peer->ctx, "prpl-jabber", name,
                                                     &created, &error);
  g_assert_no_error (error);
  g_assert_nonnull (peer->account);
  g_assert_true (created == create);
  return peer;
}

V2Peer *
v2_peer_new (const char *dir, const char *name, gint64 *clock)
{
  return peer_make (dir, name, clock, TRUE);
}

V2Peer *
v2_peer_open (const char *dir, const char *name, gint64 *clock)
{
  return peer_make (dir, name, clock, FALSE);
}

void
v2_peer_close (V2Peer *peer)
{
  g_clear_pointer (&peer->ctx, e2ee_context_free);
  peer->account = NULL;
}

void
v2_peer_reload (V2Peer *peer)
{
  GError *error = NULL;
  E2eeKeyring *keyring;

  v2_peer_close (peer);
  keyring = e2ee_keyring_load (peer->path, passphrase, &error);
  g_assert_no_error (error);
  peer_attach (peer, keyring);
  peer->account = e2ee_keyring_lookup_account (keyring, "prpl-jabber", peer->name);
  g_assert_nonnull (peer->account);
}

void
v2_peer_free (V2Peer *peer)
{
  if (peer == NULL)
    return;
  v2_peer_close (peer);
  g_free (peer->dir);
  g_free (peer->path);
  g_free (peer->name);
  g_free (peer);
}

E2eeLearnResult
v2_introduce (V2Peer *from, V2Peer *to)
{
  g_autoptr (GPtrArray) keys = e2ee_context_own_keyset (from->ctx, from->account);
  g_assert_cmpuint (keys->len, >=, 1);
  return e2ee_context_learn_keys (to->ctx, to->account, from->name, keys, NULL);
}

char *
v2_send (V2Peer *from, const char *to_name, const char *text)
{
  GError *error = NULL;
  char **pieces = e2ee_context_encrypt (from->ctx, from->account, to_name, text, 0, &error);
  char *wire;

  g_assert_no_error (error);
  g_assert_nonnull (pieces);
  g_assert_cmpuint (g_strv_length (pieces), ==, 1);
  wire = g_strdup (pieces[0]);
  g_strfreev (pieces);
  return wire;
}

void
v2_deliver (V2Peer *to, const char *from_name, const char *wire, E2eeRecvResult *r)
{
  memset (r, 0, sizeof *r);
  e2ee_context_receive (to->ctx, to->account, from_name, wire, 1000, r);
}

void
v2_deliver_ok (V2Peer *to, const char *from_name, const char *wire, const char *text)
{
  E2eeRecvResult r;

  v2_deliver (to, from_name, wire, &r);
  g_assert_no_error (r.error);
  g_assert_cmpint (r.kind, ==, E2EE_RECV_MESSAGE);
  g_assert_cmpstr (r.plaintext, ==, text);
  e2ee_recv_result_clear (&r);
}

gboolean
v2_opens (V2Peer *to, const char *from_name, const char *wire, char **shown)
{
  E2eeRecvResult r;
  gboolean opened;

  v2_deliver (to, from_name, wire, &r);
  opened = r.kind == E2EE_RECV_MESSAGE || r.kind == E2EE_RECV_WITHHELD;
  /* A refusal never carries text. */
  if (!opened)
    g_assert_null (r.plaintext);
  if (shown != NULL)
    *shown = r.plaintext != NULL ? g_strdup (r.plaintext) : NULL;
  e2ee_recv_result_clear (&r);
  return opened;
}

gboolean
v2_deliver_host (V2Peer *to, V2Peer *from, const char *wire, char **shown, guint *replies)
{
  E2eeRecvResult r;
  char *reply;
  gboolean opened;
  V2Peer *a = from, *b = to;

  v2_deliver (to, from->name, wire, &r);
  opened = r.kind == E2EE_RECV_MESSAGE || r.kind == E2EE_RECV_WITHHELD;
  if (!opened)
    g_assert_null (r.plaintext);
  if (shown != NULL)
    *shown = r.plaintext != NULL ? g_strdup (r.plaintext) : NULL;
  reply = g_steal_pointer (&r.reply);
  e2ee_recv_result_clear (&r);
  for (guint hop = 0; reply != NULL && hop < 4; hop++)
    {
      V2Peer *t = a;

      if (replies != NULL)
        (*replies)++;
      /* The reply goes back to the other side, and so on. */
      v2_deliver (a, b->name, reply, &r);
      g_free (reply);
      reply = g_steal_pointer (&r.reply);
      e2ee_recv_result_clear (&r);
      a = b;
      b = t;
    }
  g_free (reply);
  return opened;
}

/* ---- files ------------------------------------------------------------ */

static void
copy_file (const char *src, const char *dst)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *error = NULL;

  g_assert_true (g_file_get_contents (src, &data, &len, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_set_contents_full (dst, data, (gssize) len, G_FILE_SET_CONTENTS_NONE,
                                           0600, &error));
  g_assert_no_error (error);
}

void
v2_copy_dir (const char *src_dir, const char *dst_dir)
{
  static const char *const names[] = { "keyring.sqlite", "keyring.sqlite-wal" };

  g_assert_cmpint (g_mkdir_with_parents (dst_dir, 0700), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *src = g_build_filename (src_dir, names[i], NULL);
      g_autofree char *dst = g_build_filename (dst_dir, names[i], NULL);

      if (i == 0)
        g_assert_true (g_file_test (src, G_FILE_TEST_EXISTS));
      g_unlink (dst);
      if (g_file_test (src, G_FILE_TEST_EXISTS))
        copy_file (src, dst);
    }
  /* The -shm index is rebuilt from the -wal by the next opener. */
  {
    g_autofree char *shm = g_build_filename (dst_dir, "keyring.sqlite-shm", NULL);
    g_unlink (shm);
  }
}

void
v2_copy_keyring (V2Peer *peer, const char *dst_dir)
{
  v2_copy_dir (peer->dir, dst_dir);
}

void
v2_restore_dir (V2Peer *peer, const char *src_dir)
{
  static const char *const names[] = { "keyring.sqlite", "keyring.sqlite-wal",
                                       "keyring.sqlite-shm" };

  v2_peer_close (peer);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (peer->dir, names[i], NULL);
      g_unlink (p);
    }
  v2_copy_dir (src_dir, peer->dir);
  v2_peer_reload (peer);
}

GBytes *
v2_dir_bytes (const char *dir)
{
  GByteArray *all = g_byte_array_new ();
  static const char *const names[] = { "keyring.sqlite", "keyring.sqlite-wal" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (dir, names[i], NULL);
      g_autofree char *data = NULL;
      gsize len = 0;

      if (g_file_get_contents (p, &data, &len, NULL))
        g_byte_array_append (all, (const guint8 *) data, (guint) len);
    }
  return g_byte_array_free_to_bytes (all);
}

GBytes *
v2_file_bytes (const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (p, &data, &len, NULL))
    return g_bytes_new (NULL, 0);
  return g_bytes_new_take (data, len);
}

gboolean
v2_bytes_contain (GBytes *hay, const void *needle, gsize len)
{
  gsize hlen;
  const guint8 *h = g_bytes_get_data (hay, &hlen);

  return len > 0 && hlen >= len && memmem (h, hlen, needle, len) != NULL;
}

GBytes *
v2_dir_live_values (const char *dir)
{
  g_autofree char *tmp = g_strconcat (dir, ".live", NULL);
  g_autofree char *db_path = g_build_filename (tmp, "keyring.sqlite", NULL);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  GByteArray *all = g_byte_array_new ();
  GPtrArray *tables = g_ptr_array_new_with_free_func (g_free);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;

  v2_copy_dir (dir, tmp);
  g_assert_cmpint (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT name FROM sqlite_master WHERE type = 'table'",
                                       -1, &st, NULL), ==, SQLITE_OK);
  while (sqlite3_step (st) == SQLITE_ROW)
    g_ptr_array_add (tables, g_strdup ((const char *) sqlite3_column_text (st, 0)));
  sqlite3_finalize (st);
  for (guint t = 0; t < tables->len; t++)
    {
      g_autofree char *sql = g_strdup_printf ("SELECT * FROM \"%s\"",
                                              (const char *) tables->pdata[t]);
      g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &st, NULL), ==, SQLITE_OK);
      while (sqlite3_step (st) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count (st); c++)
          {
            int type = sqlite3_column_type (st, c);
            if (type == SQLITE_BLOB || type == SQLITE_TEXT)
              {
                const void *v = sqlite3_column_blob (st, c);
                int n = sqlite3_column_bytes (st, c);
                if (v != NULL && n > 0)
                  g_byte_array_append (all, v, (guint) n);
              }
          }
      sqlite3_finalize (st);
    }
  sqlite3_close (db);
  g_ptr_array_unref (tables);
  g_assert_cmpint (system (rm), ==, 0);
  return g_byte_array_free_to_bytes (all);
}

/* ---- the key log -------------------------------------------------------- */

static GArray *key_log;

static void
log_one (const char *what, const guint8 *key, gsize len)
{
  V2LoggedKey k = { { 0 } };

  if (key_log == NULL || len != 32)
    return;
  g_strlcpy (k.kind, what, sizeof k.kind);
  memcpy (k.key, key, 32);
  k.seq = key_log->len;
  g_array_append_val (key_log, k);
}

static void
on_key_logged (const char *what, const guint8 *key, gsize len, gpointer data)
{
  log_one (what, key, len);
}

/* The deterministic stream, with every short-lived scalar drawn logged. */
static void
logging_fill (guint8 *out, gsize len, E2eeRandomKind kind, gpointer data)
{
  e2ee_test_drbg_fill (out, len, kind, data);
  if (kind == E2EE_RANDOM_KEY)
    log_one ("scalar", out, len);
}

void
v2_rng_seed (const char *label)
{
  e2ee_test_rng_seed (label);
  e2ee_test_random_override.hook = logging_fill;
}

void
v2_keylog_start (const char *label)
{
  if (key_log != NULL)
    g_array_unref (key_log);
  key_log = g_array_new (FALSE, TRUE, sizeof (V2LoggedKey));
  v2_rng_seed (label);
  e2ee_test_key_log_set (on_key_logged, NULL);
}

GArray *
v2_keylog_stop (void)
{
  GArray *log = key_log;

  key_log = NULL;
  e2ee_test_key_log_set (NULL, NULL);
  return log;
}

GArray *
v2_keylog_peek (void)
{
  return key_log;
}

guint
v2_keylog_mark (void)
{
  return key_log != NULL ? key_log->len : 0;
}

/* ---- conversations ------------------------------------------------------ */

void
v2_sent_free (gpointer p)
{
  V2Sent *s = p;

  if (s == NULL)
    return;
  g_free (s->wire);
  g_free (s->text);
  g_free (s);
}

/* Sends a distinctive text and records it (not delivered yet). */
V2Sent *
v2_compose (V2Peer *from, V2Peer *to, const char *tag, guint i, GPtrArray *log)
{
  V2Sent *s = g_new0 (V2Sent, 1);

  s->text = g_strdup_printf ("%s %s #%03u: quartz-%08x", tag, from->name, i,
                             g_str_hash (tag) ^ (i * 2654435761u));
  s->wire = v2_send (from, to->name, s->text);
  if (log != NULL)
    g_ptr_array_add (log, s);
  return s;
}

/* The same, delivered at once. */
V2Sent *
v2_say (V2Peer *from, V2Peer *to, const char *tag, guint i, GPtrArray *log)
{
  V2Sent *s = v2_compose (from, to, tag, i, log);

  v2_deliver_ok (to, from->name, s->wire, s->text);
  return s;
}

void
v2_pair_new (const char *base, gint64 *clock, V2Peer **a, V2Peer **b)
{
  g_autofree char *da = g_build_filename (base, "alice", NULL);
  g_autofree char *db = g_build_filename (base, "bob", NULL);

  *a = v2_peer_new (da, V2_ALICE, clock);
  *b = v2_peer_new (db, V2_BOB, clock);
  g_assert_cmpint (v2_introduce (*b, *a), ==, E2EE_LEARN_FIRST_CONTACT);
  g_assert_cmpint (v2_introduce (*a, *b), ==, E2EE_LEARN_FIRST_CONTACT);
}

/* A fresh context on a private copy of the snapshot in @snap. */
V2Peer *
v2_open_copy (const char *snap, const char *name, const char *as, gint64 *clock)
{
  g_autofree char *dir = g_strconcat (snap, ".", as, NULL);
  v2_copy_dir (snap, dir);
  return v2_peer_open (dir, name, clock);
}

/* Keys of @kind logged in [from, to). */
GPtrArray *
v2_logged (GArray *keys, guint from, guint to, const char *kind)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  for (guint i = from; i < to && i < keys->len; i++)
    {
      V2LoggedKey *k = &g_array_index (keys, V2LoggedKey, i);
      if (strcmp (k->kind, kind) == 0)
        g_ptr_array_add (out, g_bytes_new (k->key, 32));
    }
  return out;
}

/* How many of @values the files of @dir hold; *@live (nullable): how
 * many of those a live row holds. */
guint
v2_count_in_dir (const char *dir, GPtrArray *values, guint *live)
{
  g_autoptr (GBytes) raw = v2_dir_bytes (dir);
  g_autoptr (GBytes) rows = v2_dir_live_values (dir);
  guint n = 0, l = 0;

  for (guint i = 0; i < values->len; i++)
    {
      const guint8 *v = g_bytes_get_data (values->pdata[i], NULL);
      n += v2_bytes_contain (raw, v, 32);
      l += v2_bytes_contain (rows, v, 32);
    }
  if (live != NULL)
    *live = l;
  return n;
}

/* Turns the ratchet: Alice and Bob each send one message, delivered. */
void
v2_round_trip (V2Peer *alice, V2Peer *bob, const char *tag, guint i)
{
  v2_sent_free (v2_say (alice, bob, tag, i, NULL));
  v2_sent_free (v2_say (bob, alice, tag, i, NULL));
}


/* ---- wire --------------------------------------------------------------- */

static gboolean
add_slot (const guint8 *data, gsize len, GArray *slots)
{
  E2eeV2Message msg = { 0 };
  V2Slot s = { 0 };

  if (!e2ee_v2_message_parse (data, len, &msg, NULL))
    return FALSE;
  s.type = msg.type;
  s.sender_device = msg.sender_device;
  s.recipient_device = msg.recipient_device;
  memcpy (s.dh, msg.dh, sizeof s.dh);
  s.pn = msg.pn;
  s.n = msg.n;
  g_array_append_val (slots, s);
  e2ee_v2_message_clear (&msg);
  return TRUE;
}

gboolean
v2_wire_slots (const char *wire, GArray *slots)
{
  gsize plen = strlen (E2EE_ARMOR_PREFIX), len = 0, off;
  g_autofree guint8 *env = NULL;
  gboolean ok = TRUE;
  guint n;

  g_array_set_size (slots, 0);
  if (!g_str_has_prefix (wire, E2EE_ARMOR_PREFIX))
    return FALSE;
  env = e2ee_b64url_decode (wire + plen, strlen (wire) - plen, &len, NULL);
  if (env == NULL || len < 2 || (env[0] & 0xFC) != 0x20)
    return FALSE;
  if ((env[0] & 0x01) == 0)
    return add_slot (env + 1, len - 1, slots);
  n = env[1];
  off = 2 + 12;
  if (len < off + 4)
    return FALSE;
  off += 4 + ((gsize) env[off] << 24 | (gsize) env[off + 1] << 16
              | (gsize) env[off + 2] << 8 | env[off + 3]) + 16;
  for (guint i = 0; ok && i < n; i++)
    {
      gsize sl;
      if (off + 2 > len)
        return FALSE;
      sl = (gsize) env[off] << 8 | env[off + 1];
      off += 2;
      if (off + sl > len)
        return FALSE;
      ok = add_slot (env + off, sl, slots);
      off += sl;
    }
  return ok && off == len;
}

/* ---- the process -------------------------------------------------------- */

void
v2_memory_kib (guint64 *rss, guint64 *peak)
{
  g_autofree char *status = NULL;
  g_auto (GStrv) lines = NULL;

  *rss = *peak = 0;
  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  lines = g_strsplit (status, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "VmRSS:"))
        *rss = g_ascii_strtoull (lines[i] + 6, NULL, 10);
      else if (g_str_has_prefix (lines[i], "VmHWM:"))
        *peak = g_ascii_strtoull (lines[i] + 6, NULL, 10);
    }
}

char *
v2_tmp_dir (const char *label)
{
  g_autofree char *tmpl = g_strdup_printf ("e2ee-%s-XXXXXX", label);
  GError *error = NULL;
  char *dir = g_dir_make_tmp (tmpl, &error);

  g_assert_no_error (error);
  return dir;
}

void
v2_tmp_remove (const char *dir)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}
