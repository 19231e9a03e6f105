/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-offer.h"

/* A JWK Set of E2EE_KEYSET_MAX keys with kid and e2ee_v is about 3 KiB,
 * with v2 attachments about 9.3 KiB. */
#define PROFILE_MAX_JSON (16 * 1024)
#define PROFILE_WRAP 64

#define PROFILE_HUMAN_LINE \
  "This account uses purple-e2ee end-to-end encryption; install the " \
  "purple-e2ee plugin to send it encrypted messages."
#define OFFER_HUMAN_LINE \
  "purple-e2ee key offer: this user can receive end-to-end encrypted " \
  "messages (see the purple-e2ee plugin)"
#define ANSWER_HUMAN_LINE \
  "purple-e2ee key answer: this user can receive end-to-end encrypted " \
  "messages (see the purple-e2ee plugin)"

#define STRLEN(s) (sizeof (s) - 1)

G_STATIC_ASSERT (STRLEN (E2EE_OFFER_PREFIX) == STRLEN (E2EE_ANSWER_PREFIX));

static gboolean
is_b64url_char (char c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '_';
}

/* Re-labels @cause as E2EE_ERROR_OFFER, keeping its message. */
static void
offer_error_from (GError **error, GError *cause, const char *what)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_OFFER, "%s: %s", what, cause->message);
  g_error_free (cause);
}

/* ---- compact form (e2ee-keyset.c) --------------------------------------- */

char *
e2ee_offer_compact_encode (GPtrArray *keys)
{
  return e2ee_keyset_compact_encode (keys);
}

GPtrArray *
e2ee_offer_compact_decode (const char *b64, gsize len, GError **error)
{
  return e2ee_keyset_compact_decode (b64, len, error);
}

/* ---- profile block ------------------------------------------------------ */

char *
e2ee_offer_profile_block (GPtrArray *keys)
{
  g_autofree char *json = NULL;
  g_autofree char *b64 = NULL;
  GString *out;
  gsize len;

  g_return_val_if_fail (e2ee_keyset_usable (keys), NULL);

  json = e2ee_keyset_to_json (keys);
  b64 = e2ee_b64url_encode ((const guint8 *) json, strlen (json));
  len = strlen (b64);

  out = g_string_new (E2EE_PROFILE_BEGIN "\n" PROFILE_HUMAN_LINE "\n");
  for (gsize i = 0; i < len; i += PROFILE_WRAP)
    {
      g_string_append_len (out, b64 + i, (gssize) MIN (PROFILE_WRAP, len - i));
      g_string_append_c (out, '\n');
    }
  g_string_append (out, E2EE_PROFILE_END);
  return g_string_free (out, FALSE);
}

/* Locates a block in text exactly as stored (no HTML decoding): from the
 * begin line to the end line, or to the end of the text when the end line
 * is missing, so a broken block can still be replaced. */
static gboolean
find_raw_block (const char *text, gsize *start, gsize *end)
{
  const char *b = strstr (text, E2EE_PROFILE_BEGIN);
  const char *e;

  if (b == NULL)
    return FALSE;
  e = strstr (b + STRLEN (E2EE_PROFILE_BEGIN), E2EE_PROFILE_END);
  *start = (gsize) (b - text);
  *end = e ? (gsize) (e - text) + STRLEN (E2EE_PROFILE_END) : strlen (text);
  return TRUE;
}

/* The user's text is copied byte for byte; only our block and the one
 * newline that separated it from the user's text are touched, so that
 * replace(replace(p, keys), NULL) gives p back. */
char *
e2ee_offer_profile_replace (const char *profile, GPtrArray *keys)
{
  g_autofree char *block = NULL;
  GString *out;
  const char *rest;
  gboolean placed = FALSE;
  gsize start, end;

  g_return_val_if_fail (keys == NULL || e2ee_keyset_usable (keys), NULL);

  if (profile == NULL)
    profile = "";
  if (keys)
    block = e2ee_offer_profile_block (keys);

  out = g_string_new (NULL);
  rest = profile;
  while (find_raw_block (rest, &start, &end))
    {
      g_string_append_len (out, rest, (gssize) start);
      if (block && !placed)
        {
          g_string_append (out, block);
          placed = TRUE;
          rest += end;
          continue;
        }
      rest += end;
      if (*rest == '\n')
        rest++;
      else if (*rest == '\0' && out->len > 0 && out->str[out->len - 1] == '\n')
        g_string_truncate (out, out->len - 1);
    }
  g_string_append (out, rest);

  if (block && !placed)
    {
      if (out->len > 0)
        g_string_append_c (out, '\n');
      g_string_append (out, block);
    }
  return g_string_free (out, FALSE);
}

/* Turns one level of HTML into text: tags become newlines (a <br> or <p>
 * is a line break, and any tag separates words), the common entities and
 * numeric references are decoded, and a no-break space becomes a space.
 * Something that only looks like markup ("<3", "a & b") is kept. */
static char *
html_to_text (const char *in)
{
  GString *out = g_string_sized_new (strlen (in));
  const char *p = in;

  while (*p)
    {
      if (*p == '<' && (g_ascii_isalpha (p[1]) || p[1] == '/' || p[1] == '!' || p[1] == '?'))
        {
          const char *q = p + 1;
          while (*q && *q != '>' && *q != '<' && *q != '\n')
            q++;
          if (*q == '>')
            {
              g_string_append_c (out, '\n');
              p = q + 1;
              continue;
            }
        }
      else if (*p == '&')
        {
          const char *semi = p + 1;
          while (*semi && *semi != ';' && semi - p <= 10)
            semi++;
          if (*semi == ';')
            {
              g_autofree char *name = g_strndup (p + 1, (gsize) (semi - p - 1));
              gunichar c = 0;

              if (g_ascii_strcasecmp (name, "amp") == 0)
                c = '&';
              else if (g_ascii_strcasecmp (name, "lt") == 0)
                c = '<';
              else if (g_ascii_strcasecmp (name, "gt") == 0)
                c = '>';
              else if (g_ascii_strcasecmp (name, "quot") == 0)
                c = '"';
              else if (g_ascii_strcasecmp (name, "apos") == 0)
                c = '\'';
              else if (g_ascii_strcasecmp (name, "nbsp") == 0)
                c = ' ';
              else if (name[0] == '#')
                {
                  char *endp = NULL;
                  guint64 v;
                  if (name[1] == 'x' || name[1] == 'X')
                    v = g_ascii_strtoull (name + 2, &endp, 16);
                  else
                    v = g_ascii_strtoull (name + 1, &endp, 10);
                  if (endp && *endp == '\0' && endp != name + 1 && v > 0 && v <= 0x10FFFF)
                    c = v == 0xA0 ? ' ' : (gunichar) v;
                }
              if (c != 0 && g_unichar_validate (c))
                {
                  g_string_append_unichar (out, c);
                  p = semi + 1;
                  continue;
                }
            }
        }
      else if ((guchar) p[0] == 0xC2 && (guchar) p[1] == 0xA0)
        {
          g_string_append_c (out, ' ');
          p += 2;
          continue;
        }
      g_string_append_c (out, *p);
      p++;
    }
  return g_string_free (out, FALSE);
}

/* Parses the text between the begin and end lines.  The human-readable
 * line ends in a character outside base64url ('.'), so the key data is the
 * run of base64url (and white space) before the end line; that holds
 * however the lines were joined, split or re-wrapped. */
static GPtrArray *
parse_block_body (const char *body, GError **error)
{
  g_autofree char *compact = NULL;
  g_autofree guint8 *json = NULL;
  GPtrArray *keys;
  GError *local = NULL;
  gsize end = strlen (body), start = end, json_len = 0, n = 0;

  while (start > 0 && (is_b64url_char (body[start - 1]) || g_ascii_isspace (body[start - 1])))
    start--;
  compact = g_malloc (end - start + 1);
  for (gsize i = start; i < end; i++)
    if (!g_ascii_isspace (body[i]))
      compact[n++] = body[i];
  compact[n] = '\0';

  if (n == 0)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "key block holds no key data");
      return NULL;
    }
  if (n > e2ee_b64url_encoded_len (PROFILE_MAX_JSON))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "key block is too large");
      return NULL;
    }
  json = e2ee_b64url_decode (compact, n, &json_len, &local);
  if (json == NULL)
    {
      offer_error_from (error, local, "key block");
      return NULL;
    }
  keys = e2ee_keyset_parse ((const char *) json, (gssize) json_len, &local);
  if (keys == NULL)
    {
      offer_error_from (error, local, "key block");
      return NULL;
    }
  if (!e2ee_keyset_check (keys, error))
    g_clear_pointer (&keys, g_ptr_array_unref);
  return keys;
}

/* Drops all ASCII white space.  Transports join lines, split them with
 * <br> or re-wrap them, even inside the begin and end lines; without white
 * space the block reads the same whatever they did. */
static char *
without_space (const char *in)
{
  char *out = g_malloc (strlen (in) + 1);
  char *o = out;

  for (; *in; in++)
    if (!g_ascii_isspace (*in))
      *o++ = *in;
  *o = '\0';
  return out;
}

GPtrArray *
e2ee_offer_profile_parse (const char *profile, GError **error)
{
  g_autofree char *html = NULL;
  g_autofree char *text = NULL;
  g_autofree char *body = NULL;
  g_autofree char *begin_line = without_space (E2EE_PROFILE_BEGIN);
  g_autofree char *end_line = without_space (E2EE_PROFILE_END);
  const char *begin, *end;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (profile == NULL)
    profile = "";
  html = html_to_text (profile);
  text = without_space (html);
  begin = strstr (text, begin_line);
  if (begin == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "no key block in the profile");
      return NULL;
    }
  begin += strlen (begin_line);
  end = strstr (begin, end_line);
  if (end == NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "key block has no end line");
      return NULL;
    }
  /* Two blocks would leave it to chance which keys count. */
  if (strstr (begin, begin_line) != NULL)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                           "more than one key block in the profile");
      return NULL;
    }
  body = g_strndup (begin, (gsize) (end - begin));
  /* Markup left inside the block comes from text escaped more than once
   * (a vCard DESC escaped, then shown as HTML): undo the extra levels. */
  for (int pass = 0; pass < 2 && (strchr (body, '<') || strchr (body, '&')); pass++)
    {
      g_autofree char *again = html_to_text (body);
      g_free (body);
      body = without_space (again);
    }
  return parse_block_body (body, error);
}

/* ---- status tag --------------------------------------------------------- */

char *
e2ee_offer_status_tag (GPtrArray *keys)
{
  g_autofree char *compact = NULL;

  g_return_val_if_fail (e2ee_keyset_usable (keys), NULL);

  compact = e2ee_offer_compact_encode (keys);
  return g_strconcat (E2EE_STATUS_TAG_OPEN, compact, "]", NULL);
}

/* Locates a tag; one cut short (a server truncating the status) extends
 * over its base64url characters, so replacing it leaves no debris. */
static gboolean
find_tag (const char *text, gsize *start, gsize *end, gboolean *closed)
{
  const char *s = strstr (text, E2EE_STATUS_TAG_OPEN);
  const char *e;

  if (s == NULL)
    return FALSE;
  e = s + STRLEN (E2EE_STATUS_TAG_OPEN);
  while (is_b64url_char (*e))
    e++;
  *closed = *e == ']';
  if (*closed)
    e++;
  *start = (gsize) (s - text);
  *end = (gsize) (e - text);
  return TRUE;
}

char *
e2ee_offer_status_replace (const char *status, GPtrArray *keys)
{
  g_autofree char *tag = NULL;
  GString *out;
  const char *rest;
  gboolean placed = FALSE, closed;
  gsize start, end;

  g_return_val_if_fail (keys == NULL || e2ee_keyset_usable (keys), NULL);

  if (status == NULL)
    status = "";
  if (keys)
    tag = e2ee_offer_status_tag (keys);

  out = g_string_new (NULL);
  rest = status;
  while (find_tag (rest, &start, &end, &closed))
    {
      g_string_append_len (out, rest, (gssize) start);
      rest += end;
      if (tag && !placed)
        {
          g_string_append (out, tag);
          placed = TRUE;
          continue;
        }
      /* Take the space that joined the tag to the user's text with it. */
      if (out->len > 0 && out->str[out->len - 1] == ' ')
        g_string_truncate (out, out->len - 1);
      else if (out->len == 0 && *rest == ' ')
        rest++;
    }
  g_string_append (out, rest);

  if (tag && !placed)
    {
      if (out->len > 0)
        g_string_append_c (out, ' ');
      g_string_append (out, tag);
    }
  return g_string_free (out, FALSE);
}

GPtrArray *
e2ee_offer_status_parse (const char *status, GError **error)
{
  gsize start, end, s2, e2;
  gboolean closed, closed2;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (status == NULL || !find_tag (status, &start, &end, &closed))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "no key tag in the status");
      return NULL;
    }
  if (!closed)
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                           "key tag in the status is cut short or malformed");
      return NULL;
    }
  if (find_tag (status + end, &s2, &e2, &closed2))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER,
                           "more than one key tag in the status");
      return NULL;
    }
  start += STRLEN (E2EE_STATUS_TAG_OPEN);
  return e2ee_offer_compact_decode (status + start, end - 1 - start, error);
}

/* ---- in-band offer and answer ------------------------------------------- */

char *
e2ee_offer_inband (E2eeOfferKind kind, GPtrArray *keys)
{
  g_autofree char *compact = NULL;

  g_return_val_if_fail (kind == E2EE_OFFER_KIND_OFFER || kind == E2EE_OFFER_KIND_ANSWER, NULL);
  g_return_val_if_fail (e2ee_keyset_usable (keys), NULL);

  compact = e2ee_offer_compact_encode (keys);
  if (kind == E2EE_OFFER_KIND_OFFER)
    return g_strconcat (E2EE_OFFER_PREFIX, compact, " " OFFER_HUMAN_LINE, NULL);
  return g_strconcat (E2EE_ANSWER_PREFIX, compact, " " ANSWER_HUMAN_LINE, NULL);
}

char *
e2ee_offer_note (void)
{
  return g_strdup (E2EE_OFFER_NOTE_PREFIX OFFER_HUMAN_LINE);
}

static const char *
skip_space (const char *text)
{
  while (g_ascii_isspace (*text))
    text++;
  return text;
}

gboolean
e2ee_offer_note_detect (const char *text)
{
  return text != NULL && g_str_has_prefix (skip_space (text), E2EE_OFFER_NOTE_PREFIX);
}

gboolean
e2ee_offer_inband_detect (const char *text)
{
  if (text == NULL)
    return FALSE;
  text = skip_space (text);
  return g_str_has_prefix (text, E2EE_OFFER_PREFIX)
         || g_str_has_prefix (text, E2EE_ANSWER_PREFIX);
}

GPtrArray *
e2ee_offer_inband_parse (const char *text, E2eeOfferKind *kind, GError **error)
{
  E2eeOfferKind k;
  const char *p, *e;
  GPtrArray *keys;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!e2ee_offer_inband_detect (text))
    {
      g_set_error_literal (error, E2EE_ERROR, E2EE_ERROR_OFFER, "not a key offer or answer");
      return NULL;
    }
  p = skip_space (text);
  k = g_str_has_prefix (p, E2EE_OFFER_PREFIX) ? E2EE_OFFER_KIND_OFFER : E2EE_OFFER_KIND_ANSWER;
  p += STRLEN (E2EE_OFFER_PREFIX);
  /* The key data ends at white space; the human-readable rest is for
   * people without the plugin and may have been reworded or translated. */
  e = p;
  while (*e && !g_ascii_isspace (*e))
    e++;
  keys = e2ee_offer_compact_decode (p, (gsize) (e - p), error);
  if (keys && kind)
    *kind = k;
  return keys;
}
