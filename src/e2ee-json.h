/* purple-e2ee — strictness json-glib lacks: duplicate members and depth.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define E2EE_JSON_MAX_DEPTH 16

/* Parses @len bytes of JSON text (-1: NUL-terminated) after checking what
 * json-glib silently accepts: a member name repeated in one object (json-glib
 * keeps the last, another parser might keep the first), an escape sequence
 * in a member name (which would let "x" and "\u0078" differ), nesting deeper
 * than @max_depth, and an embedded NUL.  Returns the root node (free with
 * json_node_unref) or NULL with @code in the E2EE_ERROR domain. */
JsonNode *e2ee_json_parse_strict (const char *text, gssize len, guint max_depth,
                                  gint code, GError **error);

G_END_DECLS
