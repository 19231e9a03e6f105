/* purple-e2ee — strictness json-glib lacks: duplicate members and depth.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define E2EE_JSON_MAX_DEPTH 16

/* Parses @len bytes of JSON text (-1: NUL-terminated) after checking the
 * whole RFC 8259 grammar (json-glib alone takes leading zeros, "1.", ".5",
 * raw control characters, unknown escapes and cuts strings at "\u0000") and
 * what JSON allows but we refuse: a member name repeated in one object
 * (json-glib keeps the last, another parser might keep the first), an escape
 * sequence in a member name (which would let "x" and "\u0078" differ),
 * "\u0000" and unpaired surrogate escapes, nesting deeper than @max_depth,
 * and an embedded NUL.  Returns the root node (free with json_node_unref) or
 * NULL with @code in the E2EE_ERROR domain. */
JsonNode *e2ee_json_parse_strict (const char *text, gssize len, guint max_depth,
                                  gint code, GError **error);

/* The same for text holding a secret in the string value of top-level
 * member @secret_member (a private JWK's "d"): json-glib only ever sees a
 * copy in which that value is replaced by 'A's of the same length, so no
 * freed json-glib block holds it.  The value itself goes to *@secret (NULL
 * if the member is absent or not a string; free with e2ee_string_free) as
 * it stands in the text, escape sequences not decoded (for base64url, which
 * needs none, they are then refused by the decoder); the tree holds the
 * placeholder. */
JsonNode *e2ee_json_parse_strict_secret (const char *text, gssize len, guint max_depth,
                                         gint code, const char *secret_member,
                                         char **secret, GError **error);

G_END_DECLS
