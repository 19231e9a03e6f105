/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-fragment.h"

#define ID_HEX_LEN 8
#define PREFIX_LEN (sizeof (E2EE_FRAGMENT_PREFIX) - 1)

/* ---- splitting ---------------------------------------------------------- */

static guint
n_digits (guint v)
{
  guint d = 1;

  while (v >= 10)
    {
      v /= 10;
      d++;
    }
  return d;
}

static gboolean
is_fragment_char (char c)
{
  /* Printable ASCII only: anything else is changed or dropped by some
   * transport, and a fragment must arrive byte for byte. */
  return c >= 0x20 && c <= 0x7e;
}

/* Finds the number of pieces for @len bytes of text.  The header length
 * depends on the digits of n, so try each width; the header is budgeted
 * with the widest index so every piece fits. */
static gboolean
plan_split (gsize len, gsize budget, guint *out_n, gsize *out_chunk)
{
  for (guint d = 1; d <= n_digits (E2EE_FRAGMENT_MAX_PIECES); d++)
    {
      gsize header = PREFIX_LEN + ID_HEX_LEN + 1 + d + 1 + d + 1;
      gsize chunk, n;

      if (budget <= header)
        return FALSE;
      chunk = budget - header;
      n = (len + chunk - 1) / chunk;
      if (n <= E2EE_FRAGMENT_MAX_PIECES && n_digits ((guint) n) <= d)
        {
          *out_n = (guint) n;
          *out_chunk = chunk;
          return TRUE;
        }
    }
  return FALSE;
}

char **
e2ee_fragment_split (const char *text, gsize budget, GError **error)
{
  GPtrArray *out;
  gsize len, chunk = 0;
  guint n = 0;
  guint8 id_bytes[4];
  guint32 id;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (budget < E2EE_FRAGMENT_MIN_BUDGET)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_BUDGET,
                   "fragment budget %" G_GSIZE_FORMAT " is below the minimum %d",
                   budget, E2EE_FRAGMENT_MIN_BUDGET);
      return NULL;
    }

  len = strlen (text);
  if (len <= budget)
    {
      char **one = g_new0 (char *, 2);
      one[0] = g_strdup (text);
      return one;
    }

  for (gsize i = 0; i < len; i++)
    if (!is_fragment_char (text[i]))
      {
        g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT,
                     "cannot fragment text with a non-printable or non-ASCII "
                     "byte at offset %" G_GSIZE_FORMAT, i);
        return NULL;
      }

  if (!plan_split (len, budget, &n, &chunk))
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_BUDGET,
                   "%" G_GSIZE_FORMAT " bytes do not fit in %d fragments of "
                   "%" G_GSIZE_FORMAT " bytes", len, E2EE_FRAGMENT_MAX_PIECES,
                   budget);
      return NULL;
    }

  /* The id only has to be unlikely to collide among a few pending
   * messages; it is not secret, so the cheap nonce generator is enough. */
  gcry_create_nonce (id_bytes, sizeof id_bytes);
  id = (guint32) id_bytes[0] << 24 | (guint32) id_bytes[1] << 16
       | (guint32) id_bytes[2] << 8 | id_bytes[3];

  out = g_ptr_array_new_full (n + 1, NULL);
  for (guint i = 0; i < n; i++)
    {
      gsize off = (gsize) i * chunk;
      int take = (int) MIN (chunk, len - off);
      g_ptr_array_add (out, g_strdup_printf (E2EE_FRAGMENT_PREFIX "%08x:%u/%u:%.*s",
                                             id, i + 1, n, take, text + off));
    }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

gboolean
e2ee_fragment_detect (const char *text)
{
  if (text == NULL)
    return FALSE;
  while (g_ascii_isspace (*text))
    text++;
  return strncmp (text, E2EE_FRAGMENT_PREFIX, PREFIX_LEN) == 0;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct {
  guint32 id;
  guint index;       /* 1-based */
  guint n;
  const char *chunk; /* points into the input */
  gsize chunk_len;
} Fragment;

/* Reads a decimal in [1, E2EE_FRAGMENT_MAX_PIECES] with no sign, no leading
 * zero and no more digits than the maximum has; advances *@p. */
static gboolean
parse_count (const char **p, guint *out)
{
  const char *s = *p;
  guint v = 0, digits = 0;

  if (*s == '0')
    return FALSE;
  while (g_ascii_isdigit (*s))
    {
      if (++digits > n_digits (E2EE_FRAGMENT_MAX_PIECES))
        return FALSE;
      v = v * 10 + (guint) (*s - '0');
      s++;
    }
  if (digits == 0 || v > E2EE_FRAGMENT_MAX_PIECES)
    return FALSE;
  *out = v;
  *p = s;
  return TRUE;
}

static gboolean
parse_fragment (const char *text, Fragment *f, GError **error)
{
  const char *p = text;
  const char *what;

  while (g_ascii_isspace (*p))
    p++;
  if (strncmp (p, E2EE_FRAGMENT_PREFIX, PREFIX_LEN) != 0)
    {
      what = "missing prefix";
      goto bad;
    }
  p += PREFIX_LEN;

  f->id = 0;
  for (int i = 0; i < ID_HEX_LEN; i++, p++)
    {
      /* Lower case only, so one id has one spelling. */
      if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
        {
          what = "bad id";
          goto bad;
        }
      f->id = f->id << 4 | (guint32) g_ascii_xdigit_value (*p);
    }
  if (*p++ != ':')
    {
      what = "bad id";
      goto bad;
    }
  if (!parse_count (&p, &f->index) || *p++ != '/')
    {
      what = "bad index";
      goto bad;
    }
  if (!parse_count (&p, &f->n) || *p++ != ':')
    {
      what = "bad piece count";
      goto bad;
    }
  if (f->index > f->n)
    {
      what = "index out of range";
      goto bad;
    }
  f->chunk = p;
  for (; *p != '\0'; p++)
    if (!is_fragment_char (*p))
      {
        what = "non-printable or non-ASCII byte in chunk";
        goto bad;
      }
  f->chunk_len = (gsize) (p - f->chunk);
  if (f->chunk_len == 0)
    {
      what = "empty chunk";
      goto bad;
    }
  return TRUE;

bad:
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT, "malformed fragment: %s", what);
  return FALSE;
}

/* ---- reassembly --------------------------------------------------------- */

typedef struct {
  char *conv;        /* conversation key (owned) */
  guint n;
  guint received;
  char **chunks;     /* n slots, NULL until received */
  gsize bytes;       /* sum of received chunk lengths */
  gint64 created;
  guint rank;        /* of its conversation, for fair eviction */
} Pending;

struct _E2eeReassembler {
  guint max_per_key;
  guint max_total;
  gsize max_bytes;
  guint timeout_s;
  gboolean fair;
  guint64 evicted;
  GHashTable *pending;   /* "conv\nid" -> Pending */
  GHashTable *per_conv;  /* conv -> count of Pending (absent when 0) */
};

static void
pending_free (gpointer data)
{
  Pending *pb = data;

  for (guint i = 0; i < pb->n; i++)
    g_free (pb->chunks[i]);
  g_free (pb->chunks);
  g_free (pb->conv);
  g_free (pb);
}

E2eeReassembler *
e2ee_reassembler_new (guint max_per_key, guint max_total, gsize max_bytes,
                      guint timeout_s)
{
  E2eeReassembler *r;

  g_return_val_if_fail (max_per_key > 0, NULL);
  g_return_val_if_fail (max_total > 0, NULL);
  g_return_val_if_fail (max_bytes > 0, NULL);

  r = g_new0 (E2eeReassembler, 1);
  r->max_per_key = max_per_key;
  r->max_total = max_total;
  r->max_bytes = max_bytes;
  r->timeout_s = timeout_s;
  r->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, pending_free);
  r->per_conv = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return r;
}

void
e2ee_reassembler_free (E2eeReassembler *r)
{
  if (r == NULL)
    return;
  g_hash_table_destroy (r->pending);
  g_hash_table_destroy (r->per_conv);
  g_free (r);
}

static guint
conv_count (E2eeReassembler *r, const char *conv)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (r->per_conv, conv));
}

static void
conv_count_add (E2eeReassembler *r, const char *conv, int delta)
{
  guint c = conv_count (r, conv);

  g_assert (delta > 0 || c > 0);
  c = (guint) ((int) c + delta);
  if (c == 0)
    g_hash_table_remove (r->per_conv, conv);
  else
    g_hash_table_replace (r->per_conv, g_strdup (conv), GUINT_TO_POINTER (c));
}

static gboolean
is_expired (E2eeReassembler *r, const Pending *pb, gint64 now)
{
  /* Measured from the first piece, so trickling pieces cannot keep a
   * buffer alive; a clock going backwards expires nothing. */
  return now > pb->created && now - pb->created > (gint64) r->timeout_s;
}

guint
e2ee_reassembler_expire (E2eeReassembler *r, gint64 now)
{
  GHashTableIter iter;
  gpointer value;
  guint dropped = 0;

  g_return_val_if_fail (r != NULL, 0);

  g_hash_table_iter_init (&iter, r->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Pending *pb = value;
      if (is_expired (r, pb, now))
        {
          conv_count_add (r, pb->conv, -1);
          g_hash_table_iter_remove (&iter);
          dropped++;
        }
    }
  return dropped;
}

guint
e2ee_reassembler_pending (E2eeReassembler *r, const char *key)
{
  g_return_val_if_fail (r != NULL, 0);

  if (key == NULL)
    return g_hash_table_size (r->pending);
  return conv_count (r, key);
}

gsize
e2ee_reassembler_buffered_bytes (E2eeReassembler *r)
{
  GHashTableIter iter;
  gpointer value;
  gsize total = 0;

  g_return_val_if_fail (r != NULL, 0);

  g_hash_table_iter_init (&iter, r->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    total += ((Pending *) value)->bytes;
  return total;
}

static char *
assemble (const Pending *pb)
{
  char *out = g_malloc (pb->bytes + 1);
  char *p = out;

  for (guint i = 0; i < pb->n; i++)
    {
      gsize l = strlen (pb->chunks[i]);
      memcpy (p, pb->chunks[i], l);
      p += l;
    }
  *p = '\0';
  return out;
}

void
e2ee_reassembler_set_fair (E2eeReassembler *r, gboolean fair)
{
  g_return_if_fail (r != NULL);
  r->fair = fair;
}

guint64
e2ee_reassembler_evicted (E2eeReassembler *r)
{
  g_return_val_if_fail (r != NULL, 0);
  return r->evicted;
}

/* Frees one buffer for a new message of conversation @key (see
 * e2ee_reassembler_set_fair); FALSE if no conversation may lose one. */
static gboolean
evict_for (E2eeReassembler *r, const char *key, guint rank)
{
  guint n = conv_count (r, key), vcount = 0;
  GHashTableIter iter;
  gpointer k, v;
  const char *victim_key = NULL;
  Pending *victim = NULL;

  g_hash_table_iter_init (&iter, r->pending);
  while (g_hash_table_iter_next (&iter, &k, &v))
    {
      Pending *pb = v;
      guint c;

      if (pb->rank > rank || strcmp (pb->conv, key) == 0)
        continue;
      c = conv_count (r, pb->conv);
      if (pb->rank == rank && c <= n + 1)
        continue;
      if (victim == NULL || pb->rank < victim->rank
          || (pb->rank == victim->rank
              && (c > vcount || (c == vcount && pb->created < victim->created))))
        {
          victim = pb;
          victim_key = k;
          vcount = c;
        }
    }
  if (victim == NULL)
    return FALSE;
  conv_count_add (r, victim->conv, -1);
  g_hash_table_remove (r->pending, victim_key);
  r->evicted++;
  return TRUE;
}

gboolean
e2ee_reassembler_add (E2eeReassembler *r, const char *key, const char *fragment,
                      gint64 now, char **complete, GError **error)
{
  return e2ee_reassembler_add_ranked (r, key, 0, fragment, now, complete, error);
}

/* A rejected fragment never changes any state: a forged or mangled piece
 * must not cost a genuine message its buffer.  A conversation at its
 * max_per_key is refused new messages (rather than losing its oldest
 * pending one), so a flood cannot push out a message already in progress;
 * stale buffers go when they time out. */
gboolean
e2ee_reassembler_add_ranked (E2eeReassembler *r, const char *key, guint rank,
                             const char *fragment, gint64 now, char **complete,
                             GError **error)
{
  Fragment f;
  Pending *pb;
  g_autofree char *table_key = NULL;

  g_return_val_if_fail (r != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (fragment != NULL, FALSE);
  g_return_val_if_fail (complete != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  *complete = NULL;
  e2ee_reassembler_expire (r, now);

  if (!parse_fragment (fragment, &f, error))
    return FALSE;
  if (f.chunk_len > r->max_bytes)
    {
      g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT,
                   "fragment larger than the message limit of %" G_GSIZE_FORMAT
                   " bytes", r->max_bytes);
      return FALSE;
    }

  table_key = g_strdup_printf ("%s\n%08x", key, f.id);
  pb = g_hash_table_lookup (r->pending, table_key);

  if (pb == NULL)
    {
      if (conv_count (r, key) >= r->max_per_key)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT,
                       "too many pending fragmented messages in this conversation "
                       "(limit %u)", r->max_per_key);
          return FALSE;
        }
      if (g_hash_table_size (r->pending) >= r->max_total
          && !(r->fair && evict_for (r, key, rank)))
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT,
                       "too many pending fragmented messages (limit %u)",
                       r->max_total);
          return FALSE;
        }
      pb = g_new0 (Pending, 1);
      pb->conv = g_strdup (key);
      pb->n = f.n;
      pb->chunks = g_new0 (char *, f.n);
      pb->created = now;
      pb->rank = rank;
      g_hash_table_insert (r->pending, g_strdup (table_key), pb);
      conv_count_add (r, key, +1);
    }
  else
    {
      const char *have;

      if (f.n != pb->n)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT,
                       "malformed fragment: piece count %u differs from %u",
                       f.n, pb->n);
          return FALSE;
        }
      have = pb->chunks[f.index - 1];
      if (have != NULL)
        {
          if (strlen (have) == f.chunk_len && memcmp (have, f.chunk, f.chunk_len) == 0)
            return TRUE; /* a transport repeat: harmless */
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT,
                       "malformed fragment: piece %u/%u repeated with other content",
                       f.index, f.n);
          return FALSE;
        }
      if (pb->bytes + f.chunk_len > r->max_bytes)
        {
          g_set_error (error, E2EE_ERROR, E2EE_ERROR_FRAGMENT_LIMIT,
                       "fragmented message larger than %" G_GSIZE_FORMAT " bytes",
                       r->max_bytes);
          return FALSE;
        }
    }

  pb->chunks[f.index - 1] = g_strndup (f.chunk, f.chunk_len);
  pb->bytes += f.chunk_len;
  pb->received++;

  if (pb->received == pb->n)
    {
      *complete = assemble (pb);
      conv_count_add (r, key, -1);
      g_hash_table_remove (r->pending, table_key);
    }
  return TRUE;
}
