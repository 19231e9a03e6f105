/* purple-e2ee — what the last step accepts as armor: only text the core
 * parsers decode (an envelope, a fragment of one, our exact key offer or
 * answer), or pidgin-otr's wire forms where that plugin is loaded.  A
 * prefix alone is never enough.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-plugin.h"
#include "e2ee-enforce-armor.h"
#include "e2ee-envelope.h"
#include "e2ee-envelope-v2.h"
#include "e2ee-fragment.h"
#include "e2ee-offer.h"

#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define B64STD "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

const char *
e2ee_enforce_skip_space (const char *text)
{
  while (g_ascii_isspace (*text))
    text++;
  return text;
}

static gboolean
only_chars (const char *s, gsize len, const char *set)
{
  for (gsize i = 0; i < len; i++)
    if (s[i] == '\0' || strchr (set, s[i]) == NULL)
      return FALSE;
  return TRUE;
}

gboolean
e2ee_enforce_envelope_parses (const char *text)
{
  g_autoptr (GBytes) raw = e2ee_armor_decode (text, NULL);
  E2eeEnvelopeV2 env;
  const guint8 *data;
  gsize len;

  if (raw == NULL)
    return FALSE;
  data = g_bytes_get_data (raw, &len);
  return e2ee_envelope_v2_parse (data, len, &env, NULL);
}

static gboolean
offer_parses (const char *text)
{
  E2eeOfferKind kind;
  g_autoptr (GPtrArray) keys = e2ee_offer_inband_parse (text, &kind, NULL);
  g_autofree char *ours = NULL;
  g_autofree char *sent = NULL;

  if (keys == NULL)
    return FALSE;
  /* parse() ignores the sentence after the key data: only the exact line
   * our encoder writes for these keys passes. */
  ours = e2ee_offer_inband (kind, keys);
  sent = g_strstrip (g_strdup (text));
  if (g_strcmp0 (ours, sent) == 0)
    return TRUE;
  /* ... or its key data alone (e2ee_wire_pieces drops the sentence where
   * the line is short). */
  {
    const char *space = ours != NULL ? strchr (ours, ' ') : NULL;

    return space != NULL && strlen (sent) == (gsize) (space - ours)
           && strncmp (ours, sent, (gsize) (space - ours)) == 0;
  }
}

/* One piece of a split envelope: the header must parse (the core
 * reassembler is the parser) and the chunk be a slice of armor. */
static gboolean
fragment_parses (const char *text)
{
  g_autoptr (E2eeReassembler) r = NULL;
  g_autofree char *complete = NULL;
  g_autofree char *piece = g_strstrip (g_strdup (text));
  const char *p = piece, *idx, *chunk;
  gsize clen;

  if (!g_str_has_prefix (p, E2EE_FRAGMENT_PREFIX))
    return FALSE;
  r = e2ee_reassembler_new (1, 1, 64 * 1024, 60);
  if (!e2ee_reassembler_add (r, "enforce", piece, 0, &complete, NULL))
    return FALSE;
  /* ?E2F:<id>:<i>/<n>:<chunk> */
  idx = strchr (p + strlen (E2EE_FRAGMENT_PREFIX), ':');
  chunk = idx != NULL ? strchr (idx + 1, ':') : NULL;
  if (chunk == NULL)
    return FALSE;
  idx++;
  chunk++;
  clen = strlen (chunk);
  if (g_str_has_prefix (idx, "1/"))
    {
      /* The first piece starts the armor or a key offer or answer (sent
       * in pieces without its sentence), or a part of that prefix. */
      gsize n = MIN (clen, strlen (E2EE_ARMOR_PREFIX));

      if (strncmp (chunk, E2EE_ARMOR_PREFIX, n) != 0 && strncmp (chunk, E2EE_OFFER_PREFIX, n) != 0
          && strncmp (chunk, E2EE_ANSWER_PREFIX, n) != 0)
        return FALSE;
      chunk += n;
      clen -= n;
    }
  return only_chars (chunk, clen, B64URL);
}

/* pidgin-otr's wire forms, only where that plugin is loaded (elsewhere
 * ?OTR text is plaintext like any other). */
static gboolean
otr_loaded (void)
{
  PurplePlugin *otr = purple_plugins_find_with_id ("otr-plugin");

  return otr != NULL && purple_plugin_is_loaded (otr);
}

static gboolean
otr_parses (const char *text)
{
  g_autofree char *t = g_strstrip (g_strdup (text));
  gsize len = strlen (t);

  if (!g_str_has_prefix (t, "?OTR"))
    return FALSE;
  /* A bare query ("?OTR?", "?OTRv23?") says nothing but "I speak OTR". */
  if ((strcmp (t, "?OTR?") == 0 || g_str_has_prefix (t, "?OTRv")) && t[len - 1] == '?'
      && only_chars (t + 4, len - 5, "v0123456789"))
    return TRUE;
  if (!otr_loaded ())
    return FALSE;
  /* Data message: ?OTR:<base64>. holding an OTR v2..v4 message header
   * (version 0x0002..0x0004, then a known message type). */
  if (g_str_has_prefix (t, "?OTR:"))
    {
      g_autofree guchar *raw = NULL;
      gsize rlen = 0;

      if (len <= 6 || t[len - 1] != '.' || !only_chars (t + 5, len - 6, B64STD))
        return FALSE;
      t[len - 1] = '\0';
      raw = g_base64_decode (t + 5, &rlen);
      return rlen >= 3 && raw[0] == 0 && raw[1] >= 2 && raw[1] <= 4
             && (raw[2] == 0x02 || raw[2] == 0x03 || raw[2] == 0x0a || raw[2] == 0x11
                 || raw[2] == 0x12);
    }
  /* Fragments: ?OTR|ids,k,n,piece, (v3) and ?OTR,k,n,piece, (v2). */
  if (g_str_has_prefix (t, "?OTR|") || g_str_has_prefix (t, "?OTR,"))
    return t[len - 1] == ',' && only_chars (t + 5, len - 5, B64STD "|,:.?OTRv");
  /* Query: ?OTR? or ?OTRv<versions>?, alone or with libotr's sentence. */
  if (g_str_has_prefix (t, "?OTR?") || g_str_has_prefix (t, "?OTRv"))
    {
      const char *q = strchr (t + 4, '?');

      if (q == NULL || !only_chars (t + 4, q - (t + 4), "v0123456789"))
        return FALSE;
      q = e2ee_enforce_skip_space (q + 1);
      return *q == '\0' || strstr (q, "Off-the-Record private conversation") != NULL;
    }
  return FALSE;
}

gboolean
e2ee_enforce_is_armor (const char *text)
{
  text = e2ee_enforce_skip_space (text);
  if (e2ee_armor_detect (text))
    return e2ee_enforce_envelope_parses (text);
  if (e2ee_fragment_detect (text))
    return fragment_parses (text);
  if (e2ee_offer_inband_detect (text))
    return offer_parses (text);
  return otr_parses (text);
}
