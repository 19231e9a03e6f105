/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-strangers.h"

typedef struct {
  char *conv;
  GPtrArray *keys;
} Entry;

struct _E2eeStrangers {
  guint max;
  GQueue lru;          /* Entry*, most recently used first */
  GHashTable *index;   /* conv (the entry's) -> GList* link in lru */
};

static void
entry_free (Entry *e)
{
  g_ptr_array_unref (e->keys);
  g_free (e->conv);
  g_free (e);
}

E2eeStrangers *
e2ee_strangers_new (guint max_entries)
{
  E2eeStrangers *s = g_new0 (E2eeStrangers, 1);

  s->max = MAX (max_entries, 1);
  g_queue_init (&s->lru);
  s->index = g_hash_table_new (g_str_hash, g_str_equal);
  return s;
}

void
e2ee_strangers_free (E2eeStrangers *s)
{
  if (s == NULL)
    return;
  g_hash_table_destroy (s->index);
  g_queue_clear_full (&s->lru, (GDestroyNotify) entry_free);
  g_free (s);
}

static void
unlink_entry (E2eeStrangers *s, GList *link)
{
  Entry *e = link->data;

  g_hash_table_remove (s->index, e->conv);
  g_queue_delete_link (&s->lru, link);
  entry_free (e);
}

void
e2ee_strangers_put (E2eeStrangers *s, const char *conv, GPtrArray *keys)
{
  GList *link = g_hash_table_lookup (s->index, conv);
  Entry *e;

  if (link != NULL)
    unlink_entry (s, link);
  e = g_new0 (Entry, 1);
  e->conv = g_strdup (conv);
  e->keys = g_ptr_array_ref (keys);
  g_queue_push_head (&s->lru, e);
  g_hash_table_insert (s->index, e->conv, s->lru.head);
  while (s->lru.length > s->max)
    unlink_entry (s, s->lru.tail);
}

GPtrArray *
e2ee_strangers_take (E2eeStrangers *s, const char *conv)
{
  GList *link = g_hash_table_lookup (s->index, conv);
  GPtrArray *keys;

  if (link == NULL)
    return NULL;
  keys = g_ptr_array_ref (((Entry *) link->data)->keys);
  unlink_entry (s, link);
  return keys;
}

gboolean
e2ee_strangers_contains (E2eeStrangers *s, const char *conv)
{
  return g_hash_table_contains (s->index, conv);
}

void
e2ee_strangers_remove (E2eeStrangers *s, const char *conv)
{
  GList *link = g_hash_table_lookup (s->index, conv);

  if (link != NULL)
    unlink_entry (s, link);
}

guint
e2ee_strangers_size (E2eeStrangers *s)
{
  return s->lru.length;
}
