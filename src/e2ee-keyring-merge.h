/* purple-e2ee — internals of e2ee-keyring.c: buddy records copied,
 * compared and merged with another process's changes.  Not for other
 * modules.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-keyring.h"

G_BEGIN_DECLS

E2eeBuddyRecord *e2ee_kr_buddy_new (const char *name);
E2eeDeviceRecord *e2ee_kr_device_copy (const E2eeDeviceRecord *d);
E2eeBuddyRecord *e2ee_kr_buddy_copy (const E2eeBuddyRecord *b);
gboolean e2ee_kr_device_equal (const E2eeDeviceRecord *a, const E2eeDeviceRecord *b);
gboolean e2ee_kr_buddy_equal (const E2eeBuddyRecord *a, const E2eeBuddyRecord *b);
/* Takes into @ours what @theirs (the database now) changed relative to
 * @base (what we last read or wrote; NULL if none), field by field: our
 * own changes win, replay state takes the furthest, new devices are added. */
void e2ee_kr_merge_buddy (E2eeBuddyRecord *ours, const E2eeBuddyRecord *base,
                          const E2eeBuddyRecord *theirs);

G_END_DECLS
