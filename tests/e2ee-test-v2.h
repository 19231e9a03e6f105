/* Helpers for the protocol v2 property tests: peers whose keyrings are
 * real SQLite files, copies of those files taken between operations, the
 * raw bytes of a copy, the rows it holds, the keys the code derived (key
 * log and random draws) and the ratchet headers of an armored envelope.
 * Link e2ee-test-v2.c into a program instead of including
 * e2ee-test-rng.h (it defines the test hooks).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-ec.h"
#include "e2ee-session.h"

G_BEGIN_DECLS

/* 2026-01-01T00:00:00Z, the start of every simulated clock. */
#define V2_T0 G_GINT64_CONSTANT (1767225600)

typedef struct {
  char *dir;                  /* the keyring's folder (0700) */
  char *path;                 /* dir/keyring.json (the database is keyring.sqlite) */
  char *name;                 /* account name */
  E2eeContext *ctx;
  E2eeAccountRecord *account;
  gint64 *clock;              /* simulated Unix seconds, or NULL (real time) */
  guint commits;              /* commit func calls that saved */
} V2Peer;

/* Keyrings made or opened from now on are protected with @passphrase
 * (NULL: none, the default). */
void v2_set_passphrase (const char *passphrase);

/* A peer with a new identity in @dir (created 0700, must not exist);
 * every state change is saved by the commit func before the operation
 * returns.  @clock (nullable) is read through the clock hook. */
V2Peer *v2_peer_new (const char *dir, const char *name, gint64 *clock);
/* A peer on an existing keyring in @dir (account @name must exist). */
V2Peer *v2_peer_open (const char *dir, const char *name, gint64 *clock);
/* Frees the context (closing the database) and opens it again. */
void v2_peer_reload (V2Peer *peer);
/* Closes the context but keeps the rest (v2_peer_reload opens it). */
void v2_peer_close (V2Peer *peer);
void v2_peer_free (V2Peer *peer);

/* @to learns the key set @from publishes (own_keyset + learn_keys). */
E2eeLearnResult v2_introduce (V2Peer *from, V2Peer *to);
/* One armored piece from @from to account @to_name; asserts success. */
char *v2_send (V2Peer *from, const char *to_name, const char *text);
/* Delivers @wire; result as e2ee_context_receive gives it. */
void v2_deliver (V2Peer *to, const char *from_name, const char *wire, E2eeRecvResult *r);
/* Delivers @wire and asserts it is shown as @text. */
void v2_deliver_ok (V2Peer *to, const char *from_name, const char *wire, const char *text);
/* TRUE if delivering @wire shows (MESSAGE or WITHHELD) any text; the
 * text shown, if any, in *@shown (nullable, g_free). */
gboolean v2_opens (V2Peer *to, const char *from_name, const char *wire, char **shown);

/* As a host does it: delivers @wire from @from to @to and sends back
 * every reply the receipt asks for (an offer's answer, a new session
 * start that heals a broken session), and their replies, a few hops at
 * most.  TRUE if @wire itself was shown; its text in *@shown (nullable).
 * Counts the replies sent in *@replies (nullable). */
gboolean v2_deliver_host (V2Peer *to, V2Peer *from, const char *wire, char **shown,
                          guint *replies);

/* Copies the keyring database of @peer (keyring.sqlite and, if present,
 * keyring.sqlite-wal, 0600) into the new folder @dst_dir (0700).  Call
 * between operations: every change is then committed, and the two files
 * together are a consistent snapshot. */
void v2_copy_keyring (V2Peer *peer, const char *dst_dir);
/* Copies the files of folder @src_dir the same way. */
void v2_copy_dir (const char *src_dir, const char *dst_dir);
/* Replaces @peer's database by the one in @src_dir (context closed first,
 * reopened after), as a user restoring a file copy would. */
void v2_restore_dir (V2Peer *peer, const char *src_dir);
/* The bytes of keyring.sqlite followed by keyring.sqlite-wal in @dir. */
GBytes *v2_dir_bytes (const char *dir);
/* The bytes of file @name in @dir (empty if missing). */
GBytes *v2_file_bytes (const char *dir, const char *name);
/* TRUE if @needle occurs in @hay. */
gboolean v2_bytes_contain (GBytes *hay, const void *needle, gsize len);
/* Every BLOB and TEXT value of every row of every table of the database
 * in @dir, read through SQLite from a private copy (so the copy in @dir
 * stays as it is), concatenated.  Only what a reader of the live rows
 * sees: pages freed or superseded are not in it. */
GBytes *v2_dir_live_values (const char *dir);

/* The key log: every root, chain and message key the ratchet derives and
 * every 32-byte key-kind random draw (ratchet, ephemeral and prekey
 * scalars), in order.  Starting it seeds the deterministic generator
 * with @label. */
typedef struct {
  char kind[8];               /* "rk", "ck", "mk" or "scalar" */
  guint8 key[32];
  guint seq;
} V2LoggedKey;
void v2_keylog_start (const char *label);
/* Stops logging (the generator stays deterministic) and returns the log
 * (array of V2LoggedKey; free with g_array_unref). */
GArray *v2_keylog_stop (void);
/* Re-seeds the deterministic generator (logging unchanged). */
void v2_rng_seed (const char *label);
/* The log so far (borrowed; grows as keys are logged). */
GArray *v2_keylog_peek (void);
/* Position in the log (keys logged so far). */
guint v2_keylog_mark (void);

/* ---- conversations between two peers ---- */

#define V2_ALICE "alice@example.org"
#define V2_BOB "bob@example.org"

/* A message sent: its one armored piece and its (distinctive) text. */
typedef struct {
  char *wire;
  char *text;
} V2Sent;
void v2_sent_free (gpointer sent);
/* Sends "@tag @from #@i: <tag>" from @from to @to; appended to @log
 * (nullable, which then owns it).  Not delivered. */
V2Sent *v2_compose (V2Peer *from, V2Peer *to, const char *tag, guint i, GPtrArray *log);
/* The same, delivered at once (asserted shown). */
V2Sent *v2_say (V2Peer *from, V2Peer *to, const char *tag, guint i, GPtrArray *log);
/* Alice and Bob in @base/alice and @base/bob, key sets exchanged. */
void v2_pair_new (const char *base, gint64 *clock, V2Peer **alice, V2Peer **bob);
/* Alice, then Bob, sends one message, delivered. */
void v2_round_trip (V2Peer *alice, V2Peer *bob, const char *tag, guint i);
/* A fresh context for account @name on a private copy (@snap.@as) of
 * the database in @snap. */
V2Peer *v2_open_copy (const char *snap, const char *name, const char *as, gint64 *clock);

/* Keys of @kind logged in [from, to) (array of GBytes). */
GPtrArray *v2_logged (GArray *keys, guint from, guint to, const char *kind);
/* How many of @values (32-byte GBytes) the files of @dir hold; *@live
 * (nullable): how many of them a live row holds. */
guint v2_count_in_dir (const char *dir, GPtrArray *values, guint *live);

/* One ratchet message of an envelope. */
typedef struct {
  guint8 type;
  guint32 sender_device;
  guint32 recipient_device;
  guint8 dh[E2EE_EC_POINT_LEN];
  guint32 pn;
  guint32 n;
} V2Slot;
/* The ratchet headers in an armored v2 envelope (one piece), in order;
 * FALSE (array empty) if @wire is not one. */
gboolean v2_wire_slots (const char *wire, GArray *slots);

/* Current and peak resident memory of this process in KiB. */
void v2_memory_kib (guint64 *rss, guint64 *peak);

/* A per-test temporary folder (0700); remove with v2_tmp_remove. */
char *v2_tmp_dir (const char *label);
void v2_tmp_remove (const char *dir);

G_END_DECLS
