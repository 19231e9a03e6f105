/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-replay.h"

void
e2ee_replay_window_load (E2eeReplayWindow *w, gboolean init, guint64 high, guint64 bitmap)
{
  memset (w, 0, sizeof *w);
  w->loaded = TRUE;
  if (!init)
    return;
  /* Ascending: the marked values below high, oldest first, then high. */
  for (int i = E2EE_REPLAY_WINDOW - 1; i >= 0; i--)
    if ((bitmap >> i) & 1u && high >= (guint64) i + 1)
      w->seen[w->n++] = high - 1 - (guint64) i;
  /* Below high - 64 the persisted form knows nothing: refused. */
  w->lowest = high >= E2EE_REPLAY_WINDOW ? high - E2EE_REPLAY_WINDOW : 0;
  if (w->n == E2EE_REPLAY_WINDOW)
    {
      /* 64 marked values and high: the oldest falls out, and with it
       * everything up to it. */
      w->lowest = MAX (w->lowest, w->seen[0] + 1);
      memmove (w->seen, w->seen + 1, (E2EE_REPLAY_WINDOW - 1) * sizeof w->seen[0]);
      w->n--;
    }
  w->seen[w->n++] = high;
}

static gboolean
contains (const E2eeReplayWindow *w, guint64 counter)
{
  guint lo = 0, hi = w->n;

  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;
      if (w->seen[mid] == counter)
        return TRUE;
      if (w->seen[mid] < counter)
        lo = mid + 1;
      else
        hi = mid;
    }
  return FALSE;
}

gboolean
e2ee_replay_window_fresh (const E2eeReplayWindow *w, guint64 counter)
{
  /* With 64 accepted messages all newer, @counter is outside the window. */
  if (w->n == E2EE_REPLAY_WINDOW && counter < w->seen[0])
    return FALSE;
  return counter >= w->lowest && !contains (w, counter);
}

void
e2ee_replay_window_record (E2eeReplayWindow *w, guint64 counter,
                           gboolean *init, guint64 *high, guint64 *bitmap)
{
  guint at = 0;

  g_return_if_fail (e2ee_replay_window_fresh (w, counter));
  while (at < w->n && w->seen[at] < counter)
    at++;
  if (w->n == E2EE_REPLAY_WINDOW)
    {
      /* Full (and @counter newer than the oldest, being fresh): the oldest
       * leaves, and nothing at or below it is acceptable any more. */
      w->lowest = w->seen[0] + 1;
      memmove (w->seen, w->seen + 1, (at - 1) * sizeof w->seen[0]);
      w->seen[at - 1] = counter;
    }
  else
    {
      memmove (w->seen + at + 1, w->seen + at, (w->n - at) * sizeof w->seen[0]);
      w->seen[at] = counter;
      w->n++;
    }

  /* The persisted form: the highest and the 64 values below it. */
  if (!*init)
    {
      *init = TRUE;
      *high = counter;
      *bitmap = 0;
    }
  else if (counter > *high)
    {
      guint64 shift = counter - *high;
      *bitmap = shift >= E2EE_REPLAY_WINDOW ? 0 : *bitmap << shift;
      if (shift <= E2EE_REPLAY_WINDOW)
        *bitmap |= G_GUINT64_CONSTANT (1) << (shift - 1);
      *high = counter;
    }
  else if (*high - counter <= E2EE_REPLAY_WINDOW)
    *bitmap |= G_GUINT64_CONSTANT (1) << (*high - counter - 1);
}
