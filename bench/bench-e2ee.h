/* purple-e2ee benchmarks — the main program's parts: rows measured in
 * this process (ours and raw libgcrypt), keyring children, callgrind
 * targets.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gboolean quick;
  const char *workdir;     /* caches: keyrings, libotr keys */
  const char *self;        /* this executable, for child processes */
  const char *otr;         /* the libotr program, or NULL */
  GHashTable *results;     /* key -> double* */
} BenchRun;

/* Stores a result (and echoes it to stderr as progress). */
void bench_record (BenchRun *run, const char *key, double value);

/* bench-rows.c: rows 1-4 measured in this process. */
void bench_rows_message (BenchRun *run);      /* row 1 */
void bench_rows_first_contact (BenchRun *run);/* row 2 */
void bench_rows_wire (BenchRun *run);         /* row 3 */
void bench_rows_keygen (BenchRun *run);       /* row 4 */

/* Runs one operation of @what under callgrind's toggle (see README.md);
 * @key_index picks the private key for the ECDH targets. */
int bench_callgrind (const char *what, guint key_index, guint repeat);

/* bench-session.c: the session layer and the keyring (row 5). */
void bench_rows_session (BenchRun *run);
void bench_rows_keyring (BenchRun *run);
/* bench-v2.c: protocol v2 next to libotr (README.md, "Protocol v2"). */
void bench_rows_v2 (BenchRun *run);

/* Internal child entry points (argv after the option). */
int bench_keyring_child (int argc, char **argv);

G_END_DECLS
