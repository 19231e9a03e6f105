/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Copying, comparing and merging buddy records for the keyring's write
 * through (e2ee-keyring.c).  Not for other modules. */
#include <string.h>

#include "e2ee-keyring-merge.h"
#include "e2ee-wipe.h"

/* ------------------------------------------------------------------ */
/* Records */

E2eeBuddyRecord *
e2ee_kr_buddy_new (const char *name)
{
  E2eeBuddyRecord *buddy = g_new0 (E2eeBuddyRecord, 1);

  buddy->name = g_strdup (name);
  buddy->devices = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_device_record_free);
  return buddy;
}

E2eeDeviceRecord *
e2ee_kr_device_copy (const E2eeDeviceRecord *d)
{
  E2eeDeviceRecord *c = g_new (E2eeDeviceRecord, 1);

  *c = *d;
  c->key = e2ee_key_ref (d->key);
  return c;
}

E2eeBuddyRecord *
e2ee_kr_buddy_copy (const E2eeBuddyRecord *b)
{
  E2eeBuddyRecord *c = e2ee_kr_buddy_new (b->name);

  c->policy = b->policy;
  c->key_changed = b->key_changed;
  c->had_encrypted = b->had_encrypted;
  for (guint i = 0; i < b->devices->len; i++)
    g_ptr_array_add (c->devices, e2ee_kr_device_copy (b->devices->pdata[i]));
  return c;
}

gboolean
e2ee_kr_device_equal (const E2eeDeviceRecord *a, const E2eeDeviceRecord *b)
{
  return e2ee_key_equal (a->key, b->key)
         && e2ee_key_get_caps (a->key) == e2ee_key_get_caps (b->key)
         && a->trust == b->trust && a->first_seen == b->first_seen
         && a->last_seen == b->last_seen && a->replay_init == b->replay_init
         && a->replay_high == b->replay_high && a->replay_window == b->replay_window
         && a->have_keys == b->have_keys
         && (!a->have_keys
             || (a->keys_local_caps == b->keys_local_caps
                 && a->keys_remote_caps == b->keys_remote_caps
                 && e2ee_ct_equal (a->k_send, b->k_send, sizeof a->k_send)
                 && e2ee_ct_equal (a->k_recv, b->k_recv, sizeof a->k_recv)));
}

gboolean
e2ee_kr_buddy_equal (const E2eeBuddyRecord *a, const E2eeBuddyRecord *b)
{
  if (a->policy != b->policy || a->key_changed != b->key_changed
      || a->had_encrypted != b->had_encrypted || a->devices->len != b->devices->len)
    return FALSE;
  for (guint i = 0; i < a->devices->len; i++)
    if (!e2ee_kr_device_equal (a->devices->pdata[i], b->devices->pdata[i]))
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Merging another process's changes */

/* Takes into @ours what @theirs (the database now) changed relative to
 * @base (what we last read or wrote), field by field: our own changes
 * win, replay state takes the furthest, new devices are added. */
void
e2ee_kr_merge_buddy (E2eeBuddyRecord *ours, const E2eeBuddyRecord *base, const E2eeBuddyRecord *theirs)
{
#define TAKE(field) do { if (base == NULL || ours->field == base->field) ours->field = theirs->field; } while (0)
  TAKE (policy);
  TAKE (key_changed);
  TAKE (had_encrypted);
#undef TAKE
  for (guint i = 0; i < theirs->devices->len; i++)
    {
      const E2eeDeviceRecord *t = theirs->devices->pdata[i];
      E2eeDeviceRecord *o = e2ee_buddy_find_device (ours, t->key);
      const E2eeDeviceRecord *b = base != NULL ? e2ee_buddy_find_device ((E2eeBuddyRecord *) base,
                                                                         t->key) : NULL;
      if (o == NULL)
        {
          g_ptr_array_add (ours->devices, e2ee_kr_device_copy (t));
          continue;
        }
      if (b == NULL || o->trust == b->trust)
        o->trust = t->trust;
      o->last_seen = MAX (o->last_seen, t->last_seen);
      if (t->replay_init && (!o->replay_init || t->replay_high > o->replay_high))
        {
          o->replay_init = TRUE;
          o->replay_high = t->replay_high;
          o->replay_window = t->replay_window;
          o->replay_recent.loaded = FALSE;      /* set up again from these */
        }
      else if (t->replay_init && t->replay_high == o->replay_high
               && (o->replay_window | t->replay_window) != o->replay_window)
        {
          o->replay_window |= t->replay_window;
          o->replay_recent.loaded = FALSE;
        }
      if (!o->have_keys && t->have_keys)
        {
          o->have_keys = TRUE;
          o->keys_local_caps = t->keys_local_caps;
          o->keys_remote_caps = t->keys_remote_caps;
          memcpy (o->k_send, t->k_send, sizeof o->k_send);
          memcpy (o->k_recv, t->k_recv, sizeof o->k_recv);
        }
    }
}

