/* purple-e2ee — what the last step (e2ee-enforce.c) accepts as armor.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @text past leading white space. */
const char *e2ee_enforce_skip_space (const char *text);
/* TRUE if @text (surrounding white space allowed) is an armored envelope
 * that decodes and whose header parses. */
gboolean e2ee_enforce_envelope_parses (const char *text);
/* TRUE if @text is an envelope, a fragment of one, our own key offer or
 * answer line exactly, or (only with pidgin-otr loaded) an OTR data
 * message, fragment or query; never for text that only starts like one. */
gboolean e2ee_enforce_is_armor (const char *text);

G_END_DECLS
