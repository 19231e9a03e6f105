/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-json.h"

/* Skips a JSON string starting at text[*i] == '"'; returns FALSE if it is
 * unterminated.  *has_escape tells whether it used a backslash. */
static gboolean
skip_string (const char *text, gsize len, gsize *i, gboolean *has_escape)
{
  *has_escape = FALSE;
  for ((*i)++; *i < len; (*i)++)
    {
      if (text[*i] == '\\')
        {
          *has_escape = TRUE;
          (*i)++;
        }
      else if (text[*i] == '"')
        {
          (*i)++;
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
check_structure (const char *text, gsize len, guint max_depth, gint code,
                 GError **error)
{
  /* One set of member names per open object; NULL entries for arrays. */
  GPtrArray *stack = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);
  gboolean expect_key = FALSE;
  gboolean root_closed = FALSE;
  gboolean ok = FALSE;
  gsize i = 0;

  if (memchr (text, '\0', len) != NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, code, "JSON text contains a NUL byte");
      goto out;
    }
  while (i < len)
    {
      char c = text[i];

      if (root_closed && !g_ascii_isspace (c))
        {
          /* json-glib silently drops a second root value ("{..}{..}"). */
          g_set_error (error, E2EE_ERROR, code,
                       "trailing data after the JSON value at offset %" G_GSIZE_FORMAT, i);
          goto out;
        }
      if (c == '{' || c == '[')
        {
          if (stack->len >= max_depth)
            {
              g_set_error (error, E2EE_ERROR, code,
                           "JSON nested deeper than %u levels", max_depth);
              goto out;
            }
          g_ptr_array_add (stack, c == '{' ? g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL)
                                           : g_hash_table_new (g_direct_hash, g_direct_equal));
          expect_key = (c == '{');
          i++;
        }
      else if (c == '}' || c == ']')
        {
          if (stack->len > 0)
            g_ptr_array_remove_index (stack, stack->len - 1);
          root_closed = stack->len == 0;
          expect_key = FALSE;
          i++;
        }
      else if (c == ',')
        {
          /* After a comma inside an object comes a member name. */
          GHashTable *top = stack->len ? stack->pdata[stack->len - 1] : NULL;
          expect_key = top != NULL && g_hash_table_size (top) > 0
                       && g_hash_table_lookup (top, "\x01object") != NULL;
          i++;
        }
      else if (c == '"')
        {
          gsize start = i;
          gboolean escaped;

          if (!skip_string (text, len, &i, &escaped))
            break; /* json-glib reports the syntax error */
          if (expect_key && stack->len > 0)
            {
              GHashTable *members = stack->pdata[stack->len - 1];
              char *name = g_strndup (text + start + 1, i - start - 2);

              if (escaped)
                {
                  g_set_error_literal (error, E2EE_ERROR, code,
                                       "JSON member name uses an escape sequence");
                  g_free (name);
                  goto out;
                }
              if (g_hash_table_contains (members, name))
                {
                  g_set_error (error, E2EE_ERROR, code,
                               "JSON member \"%s\" appears twice", name);
                  g_free (name);
                  goto out;
                }
              g_hash_table_add (members, name);
              /* Marks this table as an object's so commas restore key mode. */
              g_hash_table_insert (members, g_strdup ("\x01object"), GINT_TO_POINTER (1));
              expect_key = FALSE;
            }
        }
      else if (strchr (" \t\n\r:-+.0123456789eEtrufalsn", c) == NULL)
        {
          /* json-glib also takes single-quoted strings and comments; both
           * would hide member names from the checks above. */
          g_set_error (error, E2EE_ERROR, code,
                       "JSON text uses a non-standard character at offset %" G_GSIZE_FORMAT, i);
          goto out;
        }
      else
        i++;
    }
  ok = TRUE;

out:
  g_ptr_array_unref (stack);
  return ok;
}

JsonNode *
e2ee_json_parse_strict (const char *text, gssize len, guint max_depth,
                        gint code, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) local = NULL;
  gsize n = len < 0 ? strlen (text) : (gsize) len;

  if (!check_structure (text, n, max_depth, code, error))
    return NULL;
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, (gssize) n, &local))
    {
      g_set_error (error, E2EE_ERROR, code, "invalid JSON: %s", local->message);
      return NULL;
    }
  if (json_parser_get_root (parser) == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, code, "empty JSON text");
      return NULL;
    }
  return json_node_copy (json_parser_get_root (parser));
}
