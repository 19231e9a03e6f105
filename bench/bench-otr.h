/* purple-e2ee benchmarks — the libotr reference program's parts: two
 * peers in one process, their message pump (bench-otr.c) and the rows
 * that stand next to protocol v2 (bench-otr-v2.c).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <libotr/proto.h>
#include <libotr/message.h>
#include <libotr/userstate.h>

G_BEGIN_DECLS

#define PROTO "prpl-bench"

typedef struct _Peer Peer;

typedef struct {
  char *to;        /* account name of the recipient */
  char *text;
} Wire;

struct _Peer {
  const char *name;       /* our account; the other peer's buddy name */
  OtrlUserState us;
  Peer *other;
  GQueue inbox;           /* Wire* addressed to this peer */
  guint secure_count;     /* gone_secure + still_secure callbacks */
  guint injected;         /* messages injected by this peer */
  guint errors;
  const char *instag_file;
};

typedef struct {
  Peer *a, *b;
  char *text;
  gsize len;
} BenchOtrMsg;

void G_GNUC_NORETURN bench_otr_fail (const char *what, gcry_error_t err);
/* otrl_message_sending from @from to its peer; the caller frees the
 * result with otrl_message_free. */
char *bench_otr_send (Peer *from, const char *text, OtrlFragmentPolicy policy);
/* Delivers one queued message to @p; the shown text (g_free) or NULL. */
char *bench_otr_deliver (Peer *p);
void bench_otr_check_shown (char *shown, const BenchOtrMsg *m);
/* One data message sent, delivered and checked. */
void bench_otr_send_and_receive (Peer *from, Peer *to, const BenchOtrMsg *m);

/* Runs one AKE started by @a's query; TRUE when both sides went secure. */
gboolean bench_otr_run_ake (Peer *a, Peer *b);

/* bench-otr-v2.c: one sample of each reference of the protocol v2 rows
 * (sending alone, turns, the AKE, libotr's DH and DSA operations, its
 * fingerprint write), printed as result lines; the main program runs
 * this once per round, between its own samples. */
int bench_otr_v2_round (Peer *a, Peer *b, const char *workdir, gboolean quick);
/* One operation of @what under callgrind's toggle (bench/callgrind-v2.sh). */
int bench_otr_callgrind (Peer *a, Peer *b, const char *what, guint repeat);

G_END_DECLS
