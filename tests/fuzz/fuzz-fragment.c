/* libFuzzer target: fragment parsing, reassembly and splitting.
 * Each input line is one incoming fragment; the first byte picks which of
 * three conversations it belongs to and the clock.  Checks that the limits
 * hold after every step, and that split() output always reassembles to
 * the text it came from.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-error.h"
#include "e2ee-fragment.h"
#include "fuzz-common.h"

#define PER_KEY 3
#define TOTAL 5
#define MAX_BYTES 2048

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init_gcrypt ();
  return 0;
}

static void
feed_lines (const char *text)
{
  static const char *const convs[] = { "acct\nalice", "acct\nbob", "other\nalice" };
  E2eeReassembler *r = e2ee_reassembler_new (PER_KEY, TOTAL, MAX_BYTES, 30);
  char **lines = g_strsplit (text, "\n", 64);
  gint64 now = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      const char *conv = convs[0];
      char *complete = NULL;
      GError *error = NULL;
      guint before = e2ee_reassembler_pending (r, NULL);

      if (*line != '\0')
        {
          guint8 sel = (guint8) *line;
          conv = convs[sel % 3];
          now += (sel >> 4) * 4; /* lets buffers time out sometimes */
        }
      if (e2ee_reassembler_add (r, conv, line, now, &complete, &error))
        {
          FUZZ_CHECK (error == NULL);
          if (complete != NULL)
            FUZZ_CHECK (strlen (complete) <= MAX_BYTES);
          g_free (complete);
        }
      else
        {
          FUZZ_CHECK (complete == NULL && error != NULL && error->domain == E2EE_ERROR);
          /* A refused fragment changes nothing (expiry aside, which
           * add() does before looking at the fragment). */
          FUZZ_CHECK (e2ee_reassembler_pending (r, NULL) <= before);
          g_error_free (error);
        }
      FUZZ_CHECK (e2ee_reassembler_pending (r, NULL) <= TOTAL);
      for (guint c = 0; c < G_N_ELEMENTS (convs); c++)
        FUZZ_CHECK (e2ee_reassembler_pending (r, convs[c]) <= PER_KEY);
      FUZZ_CHECK (e2ee_reassembler_buffered_bytes (r) <= (gsize) TOTAL * MAX_BYTES);
    }
  g_strfreev (lines);
  e2ee_reassembler_free (r);
}

static void
split_round_trip (const char *text, gsize budget)
{
  GError *error = NULL;
  char **pieces = e2ee_fragment_split (text, budget, &error);
  E2eeReassembler *r;
  char *complete = NULL;
  guint n;

  if (pieces == NULL)
    {
      FUZZ_CHECK (error != NULL);
      g_error_free (error);
      return;
    }
  n = g_strv_length (pieces);
  FUZZ_CHECK (n >= 1 && n <= E2EE_FRAGMENT_MAX_PIECES);
  for (guint i = 0; i < n; i++)
    FUZZ_CHECK (strlen (pieces[i]) <= MAX (budget, strlen (text)));
  if (n == 1 && strcmp (pieces[0], text) == 0)
    {
      g_strfreev (pieces);
      return;
    }
  r = e2ee_reassembler_new (1, 1, strlen (text) + 1, 30);
  /* Delivered in reverse order: order must not matter. */
  for (guint i = n; i-- > 0;)
    {
      FUZZ_CHECK (e2ee_fragment_detect (pieces[i]));
      FUZZ_CHECK (e2ee_reassembler_add (r, "k", pieces[i], 0, &complete, NULL));
      FUZZ_CHECK ((complete != NULL) == (i == 0));
    }
  FUZZ_CHECK (strcmp (complete, text) == 0);
  g_free (complete);
  e2ee_reassembler_free (r);
  g_strfreev (pieces);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_strndup (data, size);

  feed_lines (text);
  if (size > 0)
    split_round_trip (text + 1, (gsize) data[0] + 8);
  g_free (text);
  return 0;
}
