/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-json.h"
#include "e2ee-wipe.h"

/* A complete RFC 8259 grammar check run before json-glib builds the tree:
 * json-glib is lenient (it cuts strings at an escaped NUL, takes leading
 * zeros, "1.", ".5", raw control characters, unknown escapes, single quotes
 * and comments), so nothing reaches it that this check did not accept.
 * It also refuses what JSON allows but we do not: a member name repeated in
 * an object, an escape sequence in a member name, \u0000 and unpaired
 * surrogates, nesting deeper than the caller's limit. */

typedef struct {
  const char *text;
  gsize len;
  gsize i;
  guint max_depth;
  gint code;
  GError **error;
  /* A top-level member whose string value is recorded (NULL: none). */
  const char *secret_name;
  gsize secret_start, secret_end;   /* inside the quotes; end > 0 if found */
  gboolean secret_escaped;          /* unused: the raw text is handed out */
} Scan;

static gboolean
fail (Scan *s, const char *what)
{
  g_set_error (s->error, E2EE_ERROR, s->code, "invalid JSON at offset %" G_GSIZE_FORMAT ": %s",
               s->i, what);
  return FALSE;
}

static void
skip_ws (Scan *s)
{
  while (s->i < s->len && strchr (" \t\n\r", s->text[s->i]) != NULL && s->text[s->i] != '\0')
    s->i++;
}

static gint
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static gboolean
read_u_escape (Scan *s, guint *out)
{
  guint v = 0;

  /* s->i is at the 'u'. */
  if (s->len - s->i < 5)
    return fail (s, "truncated \\u escape");
  for (guint k = 1; k <= 4; k++)
    {
      gint h = hex_value (s->text[s->i + k]);
      if (h < 0)
        return fail (s, "\\u escape without four hex digits");
      v = v << 4 | (guint) h;
    }
  s->i += 5;
  *out = v;
  return TRUE;
}

/* A string starting at the opening quote; *escaped tells whether it used a
 * backslash. */
static gboolean
scan_string (Scan *s, gboolean *escaped)
{
  gsize start;

  *escaped = FALSE;
  s->i++;
  start = s->i;
  while (s->i < s->len)
    {
      guchar c = (guchar) s->text[s->i];

      if (c == '"')
        {
          if (!g_utf8_validate (s->text + start, (gssize) (s->i - start), NULL))
            return fail (s, "string is not valid UTF-8");
          s->i++;
          return TRUE;
        }
      if (c < 0x20)
        return fail (s, "raw control character in a string");
      if (c != '\\')
        {
          s->i++;
          continue;
        }
      *escaped = TRUE;
      if (++s->i >= s->len)
        break;
      c = (guchar) s->text[s->i];
      if (strchr ("\"\\/bfnrt", c) != NULL && c != '\0')
        s->i++;
      else if (c == 'u')
        {
          guint u;

          if (!read_u_escape (s, &u))
            return FALSE;
          if (u == 0)
            return fail (s, "\\u0000 in a string");
          if (u >= 0xDC00 && u <= 0xDFFF)
            return fail (s, "unpaired surrogate escape");
          if (u >= 0xD800 && u <= 0xDBFF)
            {
              guint low;

              if (s->len - s->i < 2 || s->text[s->i] != '\\' || s->text[s->i + 1] != 'u')
                return fail (s, "unpaired surrogate escape");
              s->i++;
              if (!read_u_escape (s, &low))
                return FALSE;
              if (low < 0xDC00 || low > 0xDFFF)
                return fail (s, "unpaired surrogate escape");
            }
        }
      else
        return fail (s, "invalid escape sequence");
    }
  return fail (s, "unterminated string");
}

static gboolean
is_digit (Scan *s)
{
  return s->i < s->len && s->text[s->i] >= '0' && s->text[s->i] <= '9';
}

/* number = [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ("e"/"E") [+-] 1*DIGIT ] */
static gboolean
scan_number (Scan *s)
{
  if (s->text[s->i] == '-')
    s->i++;
  if (!is_digit (s))
    return fail (s, "number without digits");
  if (s->text[s->i] == '0')
    {
      s->i++;
      if (is_digit (s))
        return fail (s, "number with a leading zero");
    }
  else
    while (is_digit (s))
      s->i++;
  if (s->i < s->len && s->text[s->i] == '.')
    {
      s->i++;
      if (!is_digit (s))
        return fail (s, "no digits after the decimal point");
      while (is_digit (s))
        s->i++;
    }
  if (s->i < s->len && (s->text[s->i] == 'e' || s->text[s->i] == 'E'))
    {
      s->i++;
      if (s->i < s->len && (s->text[s->i] == '+' || s->text[s->i] == '-'))
        s->i++;
      if (!is_digit (s))
        return fail (s, "no digits in the exponent");
      while (is_digit (s))
        s->i++;
    }
  return TRUE;
}

static gboolean
scan_literal (Scan *s, const char *word)
{
  gsize n = strlen (word);

  if (s->len - s->i < n || memcmp (s->text + s->i, word, n) != 0)
    return fail (s, "unexpected character");
  s->i += n;
  return TRUE;
}

static gboolean scan_value (Scan *s, guint depth);

static gboolean
scan_object (Scan *s, guint depth)
{
  g_autoptr (GHashTable) names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  s->i++;
  skip_ws (s);
  if (s->i < s->len && s->text[s->i] == '}')
    {
      s->i++;
      return TRUE;
    }
  for (;;)
    {
      gsize start = s->i;
      gboolean escaped;
      char *name;

      if (s->i >= s->len || s->text[s->i] != '"')
        return fail (s, "expected a member name");
      if (!scan_string (s, &escaped))
        return FALSE;
      if (escaped)
        {
          s->i = start;
          return fail (s, "member name uses an escape sequence");
        }
      name = g_strndup (s->text + start + 1, s->i - start - 2);
      if (g_hash_table_contains (names, name))
        {
          g_set_error (s->error, E2EE_ERROR, s->code, "JSON member \"%s\" appears twice", name);
          g_free (name);
          return FALSE;
        }
      g_hash_table_add (names, name);
      skip_ws (s);
      if (s->i >= s->len || s->text[s->i] != ':')
        return fail (s, "expected ':'");
      s->i++;
      skip_ws (s);
      if (depth == 1 && s->secret_name && strcmp (name, s->secret_name) == 0
          && s->i < s->len && s->text[s->i] == '"')
        {
          s->secret_start = s->i + 1;
          if (!scan_string (s, &s->secret_escaped))
            return FALSE;
          s->secret_end = s->i - 1;
        }
      else if (!scan_value (s, depth))
        return FALSE;
      skip_ws (s);
      if (s->i < s->len && s->text[s->i] == ',')
        {
          s->i++;
          skip_ws (s);
          continue;
        }
      if (s->i < s->len && s->text[s->i] == '}')
        {
          s->i++;
          return TRUE;
        }
      return fail (s, "expected ',' or '}'");
    }
}

static gboolean
scan_array (Scan *s, guint depth)
{
  s->i++;
  skip_ws (s);
  if (s->i < s->len && s->text[s->i] == ']')
    {
      s->i++;
      return TRUE;
    }
  for (;;)
    {
      if (!scan_value (s, depth))
        return FALSE;
      skip_ws (s);
      if (s->i < s->len && s->text[s->i] == ',')
        {
          s->i++;
          continue;
        }
      if (s->i < s->len && s->text[s->i] == ']')
        {
          s->i++;
          return TRUE;
        }
      return fail (s, "expected ',' or ']'");
    }
}

/* @depth: containers already open around this value. */
static gboolean
scan_value (Scan *s, guint depth)
{
  gboolean escaped;

  skip_ws (s);
  if (s->i >= s->len)
    return fail (s, "unexpected end of text");
  switch (s->text[s->i])
    {
    case '{':
    case '[':
      if (depth >= s->max_depth)
        {
          g_set_error (s->error, E2EE_ERROR, s->code,
                       "JSON nested deeper than %u levels", s->max_depth);
          return FALSE;
        }
      return s->text[s->i] == '{' ? scan_object (s, depth + 1) : scan_array (s, depth + 1);
    case '"':
      return scan_string (s, &escaped);
    case 't':
      return scan_literal (s, "true");
    case 'f':
      return scan_literal (s, "false");
    case 'n':
      return scan_literal (s, "null");
    default:
      if (s->text[s->i] == '-' || (s->text[s->i] >= '0' && s->text[s->i] <= '9'))
        return scan_number (s);
      /* Single quotes, comments, hexadecimal numbers, NaN, ... */
      return fail (s, "non-standard character");
    }
}

static gboolean
check_structure (Scan *sp, const char *text, gsize len, guint max_depth, gint code,
                 GError **error)
{
  Scan s = { text, len, 0, max_depth, code, error, sp ? sp->secret_name : NULL, 0, 0, FALSE };

  if (memchr (text, '\0', len) != NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, code, "JSON text contains a NUL byte");
      return FALSE;
    }
  if (!scan_value (&s, 0))
    return FALSE;
  skip_ws (&s);
  if (s.i < len)
    {
      /* json-glib silently drops a second root value ("{..}{..}"). */
      g_set_error (error, E2EE_ERROR, code,
                   "trailing data after the JSON value at offset %" G_GSIZE_FORMAT, s.i);
      return FALSE;
    }
  if (sp)
    *sp = s;
  return TRUE;
}

static JsonNode *
parse_checked (const char *text, gsize n, gint code, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;

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

JsonNode *
e2ee_json_parse_strict_secret (const char *text, gssize len, guint max_depth, gint code,
                               const char *secret_member, char **secret, GError **error)
{
  Scan s = { 0 };
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  JsonNode *root;
  char *copy;

  g_return_val_if_fail (secret != NULL && secret_member != NULL, NULL);
  *secret = NULL;
  s.secret_name = secret_member;
  if (!check_structure (&s, text, n, max_depth, code, error))
    return NULL;
  if (s.secret_end == 0 && s.secret_start == 0)
    return parse_checked (text, n, code, error);
  /* json-glib gets a copy in which the value is 'A's of the same length:
   * its scanner, tree and copies never hold the secret. */
  copy = (char *) e2ee_secret_alloc (n + 1);
  memcpy (copy, text, n);
  memset (copy + s.secret_start, 'A', s.secret_end - s.secret_start);
  root = parse_checked (copy, n, code, error);
  e2ee_secret_free (copy, n + 1);
  if (root == NULL)
    return NULL;
  *secret = (char *) e2ee_secret_alloc (s.secret_end - s.secret_start + 1);
  memcpy (*secret, text + s.secret_start, s.secret_end - s.secret_start);
  return root;
}

JsonNode *
e2ee_json_parse_strict (const char *text, gssize len, guint max_depth,
                        gint code, GError **error)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;

  if (!check_structure (NULL, text, n, max_depth, code, error))
    return NULL;
  return parse_checked (text, n, code, error);
}
