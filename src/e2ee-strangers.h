/* purple-e2ee — key sets offered by strangers (people who are neither on
 * the buddy list nor someone the user wrote to).  They are unauthenticated
 * and anyone can send them, so they are kept in a small in-memory cache
 * (least recently used dropped first), never in the keyring, until the
 * host says the sender is a contact.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define E2EE_STRANGERS_MAX 64

typedef struct _E2eeStrangers E2eeStrangers;

E2eeStrangers *e2ee_strangers_new (guint max_entries);
void e2ee_strangers_free (E2eeStrangers *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (E2eeStrangers, e2ee_strangers_free)

/* Remembers @keys (E2eeKey*, a ref is taken on the array) as the latest
 * key set of conversation @conv, replacing an earlier one, and makes it
 * the most recently used; drops the least recently used entry when there
 * are more than max_entries. */
void e2ee_strangers_put (E2eeStrangers *s, const char *conv, GPtrArray *keys);
/* Removes and returns the key set of @conv (unref it), or NULL. */
GPtrArray *e2ee_strangers_take (E2eeStrangers *s, const char *conv);
gboolean e2ee_strangers_contains (E2eeStrangers *s, const char *conv);
/* Forgets @conv. */
void e2ee_strangers_remove (E2eeStrangers *s, const char *conv);
guint e2ee_strangers_size (E2eeStrangers *s);

G_END_DECLS
