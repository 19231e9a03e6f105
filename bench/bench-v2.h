/* purple-e2ee benchmarks — protocol v2 (Double Ratchet, X3DH) rows:
 * what bench-v2.c and bench-v2-commit.c share.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

#include "bench-e2ee.h"
#include "e2ee-ratchet.h"

G_BEGIN_DECLS

/* Rounds in full mode (quick mode: 3). */
#define BENCH_V2_MAX_REPS 11

/* Alice (initiator) and Bob (responder, with a signed prekey), as two
 * devices that have exchanged their published keys. */
typedef struct {
  E2eeKey *ik_a, *ik_b;         /* private identities */
  E2eeKey *a_pub, *b_pub;       /* what the other side holds */
  guint32 dev_a, dev_b;         /* device tags: first 4 bytes of tp(IK) */
  E2eeSignKey *sig_b;           /* Bob's signing key */
  E2eeEcSecret *spk_b;          /* Bob's prekey, id 1 */
  GBytes *record_b;             /* its signed record, as published */
  E2eePrekey *pk_b;             /* the record as Alice verified it */
  guint64 now;
} BenchV2Ids;

void bench_v2_ids_init (BenchV2Ids *ids);
void bench_v2_ids_clear (BenchV2Ids *ids);

/* A whole prekey start: Alice's half, her first message (@text, @len)
 * sealed; Bob parses it, checks its replay tag, runs his half and opens
 * it.  Fills *@a and *@b (new sessions). */
void bench_v2_start (const BenchV2Ids *ids, const char *text, gsize len,
                     E2eeRatchet **a, E2eeRatchet **b);

/* Opens @msg in @to and checks the plaintext has @len bytes. */
void bench_v2_open_check (E2eeRatchet *to, GBytes *msg, guint64 now, gsize len);

/* A durable state store like the keyring's: one SQLite file in WAL mode
 * with synchronous=FULL (the pragmas of src/e2ee-store.c), one plain
 * table of state blobs, one row per session (bench-v2-commit.c). */
typedef struct _BenchV2Store BenchV2Store;

BenchV2Store *bench_v2_store_open (const char *path);
/* Writes @state's blob to row @row in one BEGIN IMMEDIATE ... COMMIT. */
void bench_v2_store_commit (BenchV2Store *store, gint64 row, const E2eeRatchet *state);
void bench_v2_store_close (BenchV2Store *store);

/* bench-v2-commit.c: per message with the durable commit (v2 row 1) and
 * the parts under it (fdatasync, per-message handles), measured in
 * rounds so that they interleave with libotr's process. */
typedef struct _BenchV2Commit BenchV2Commit;

BenchV2Commit *bench_v2_commit_new (BenchRun *run, const BenchV2Ids *ids);
void bench_v2_commit_round (BenchV2Commit *c, guint max_reps, gint64 target_ns);
void bench_v2_commit_record (BenchV2Commit *c, BenchRun *run);
void bench_v2_commit_free (BenchV2Commit *c);

/* bench-v2-turn.c: alternating turns (v2 row 2), in rounds. */
typedef struct _BenchV2Turns BenchV2Turns;

BenchV2Turns *bench_v2_turns_new (BenchRun *run, const BenchV2Ids *ids);
void bench_v2_turns_round (BenchV2Turns *g, gint64 target_ns);
void bench_v2_turns_record (BenchV2Turns *g, BenchRun *run);
void bench_v2_turns_free (BenchV2Turns *g);

/* bench-v2-session.c: the same through the session layer with the
 * plugin's commit (e2ee_keyring_save, passphrase-protected keyring). */
typedef struct _BenchV2Session BenchV2Session;

BenchV2Session *bench_v2_session_new (BenchRun *run);
void bench_v2_session_round (BenchV2Session *s, guint max_reps, gint64 target_ns);
void bench_v2_session_record (BenchV2Session *s, BenchRun *run);
void bench_v2_session_free (BenchV2Session *s);

/* bench-v2-cg.c: one operation of @what under callgrind's toggle, or
 * @repeat of them untoggled (where a repetition is the same operation). */
int bench_v2_callgrind (const char *what, guint repeat);

void G_GNUC_NORETURN bench_v2_die (const char *what, GError *error);

G_END_DECLS
