/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-wipe.h"
#include "e2ee-withheld.h"

typedef struct {
  char *conv;
  E2eeWithheldMessage *message;
} Entry;

struct _E2eeWithheld {
  guint max_per_conv;
  guint max_total;
  GQueue queue;          /* Entry*, oldest first */
  GHashTable *per_conv;  /* conv -> count (absent when 0) */
};

void
e2ee_withheld_message_free (E2eeWithheldMessage *message)
{
  if (message == NULL)
    return;
  e2ee_string_free (message->plaintext);
  g_free (message->sender_kid);
  g_free (message);
}

static void
entry_free (Entry *e)
{
  e2ee_withheld_message_free (e->message);
  g_free (e->conv);
  g_free (e);
}

E2eeWithheld *
e2ee_withheld_new (guint max_per_conv, guint max_total)
{
  E2eeWithheld *w = g_new0 (E2eeWithheld, 1);

  w->max_per_conv = MAX (max_per_conv, 1);
  w->max_total = MAX (max_total, 1);
  g_queue_init (&w->queue);
  w->per_conv = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return w;
}

void
e2ee_withheld_free (E2eeWithheld *w)
{
  if (w == NULL)
    return;
  g_queue_clear_full (&w->queue, (GDestroyNotify) entry_free);
  g_hash_table_destroy (w->per_conv);
  g_free (w);
}

static void
count_add (E2eeWithheld *w, const char *conv, int delta)
{
  guint c = GPOINTER_TO_UINT (g_hash_table_lookup (w->per_conv, conv));

  c = (guint) ((int) c + delta);
  if (c == 0)
    g_hash_table_remove (w->per_conv, conv);
  else
    g_hash_table_replace (w->per_conv, g_strdup (conv), GUINT_TO_POINTER (c));
}

guint
e2ee_withheld_count (E2eeWithheld *w, const char *conv)
{
  if (conv == NULL)
    return w->queue.length;
  return GPOINTER_TO_UINT (g_hash_table_lookup (w->per_conv, conv));
}

static void
drop_link (E2eeWithheld *w, GList *link)
{
  Entry *e = link->data;

  count_add (w, e->conv, -1);
  g_queue_delete_link (&w->queue, link);
  entry_free (e);
}

guint
e2ee_withheld_add (E2eeWithheld *w, const char *conv, const char *kid, char *plaintext,
                   gint64 received)
{
  Entry *e = g_new0 (Entry, 1);
  guint dropped = 0;

  if (e2ee_withheld_count (w, conv) >= w->max_per_conv)
    {
      for (GList *l = w->queue.head; l != NULL; l = l->next)
        if (strcmp (((Entry *) l->data)->conv, conv) == 0)
          {
            drop_link (w, l);
            dropped++;
            break;
          }
    }
  else if (w->queue.length >= w->max_total)
    {
      drop_link (w, w->queue.head);
      dropped++;
    }
  e->conv = g_strdup (conv);
  e->message = g_new0 (E2eeWithheldMessage, 1);
  e->message->sender_kid = g_strdup (kid);
  e->message->plaintext = plaintext;
  e->message->sender_trust = E2EE_TRUST_UNDECIDED;
  e->message->received = received;
  g_queue_push_tail (&w->queue, e);
  count_add (w, conv, +1);
  return dropped;
}

GPtrArray *
e2ee_withheld_take (E2eeWithheld *w, const char *conv, E2eeWithheldPick pick, gpointer data)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_withheld_message_free);
  GList *l = w->queue.head;

  while (l != NULL)
    {
      GList *next = l->next;
      Entry *e = l->data;

      if (strcmp (e->conv, conv) == 0 && (pick == NULL || pick (e->message->sender_kid, data)))
        {
          g_ptr_array_add (out, e->message);
          e->message = NULL;
          drop_link (w, l);
        }
      l = next;
    }
  return out;
}
