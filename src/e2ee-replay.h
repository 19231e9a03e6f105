/* purple-e2ee — the replay window for v1 envelope counters: the last 64
 * accepted *messages*, not 64 counter values.  Counters follow the clock
 * in 10 ms ticks (PROTOCOL.md §7), so a window of 64 values would be 0.64 s
 * and drop a message overtaken by one sent later than that.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define E2EE_REPLAY_WINDOW 64

/* A plain value (no pointers): copied with its record, wiped with it. */
typedef struct {
  gboolean loaded;            /* set up (from the persisted form) */
  guint n;                    /* counters in @seen */
  guint64 lowest;             /* smallest counter still acceptable */
  guint64 seen[E2EE_REPLAY_WINDOW]; /* the n highest accepted, ascending */
} E2eeReplayWindow;

/* Sets @w up from the persisted form (PROTOCOL.md §9: the highest accepted
 * counter @high and a bitmap of the 64 values below it, bit i = high-1-i).
 * That form says nothing about counters more than 64 below @high, so they
 * stay refused: after a restart the window is never wider than before. */
void e2ee_replay_window_load (E2eeReplayWindow *w, gboolean init, guint64 high,
                              guint64 bitmap);

/* TRUE if @counter was not accepted before and is not older than the 64
 * most recent accepted messages; does not record it. */
gboolean e2ee_replay_window_fresh (const E2eeReplayWindow *w, guint64 counter);

/* Records an accepted @counter (which must be fresh) and updates the
 * persisted form *@high / *@bitmap as well (*@init set). */
void e2ee_replay_window_record (E2eeReplayWindow *w, guint64 counter,
                                gboolean *init, guint64 *high, guint64 *bitmap);

G_END_DECLS
