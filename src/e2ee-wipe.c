/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <sys/mman.h>

#include "e2ee-wipe.h"

void
e2ee_wipe (void *buf, gsize len)
{
  if (buf == NULL || len == 0)
    return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
  explicit_bzero (buf, len);
#else
  {
    /* A volatile pointer keeps the stores from being optimised away. */
    volatile guint8 *p = buf;
    while (len--)
      *p++ = 0;
  }
#endif
}

guint8 *
e2ee_secret_alloc (gsize len)
{
  return g_malloc0 (len == 0 ? 1 : len);
}

void
e2ee_secret_free (void *buf, gsize len)
{
  if (buf == NULL)
    return;
  e2ee_wipe (buf, len);
  g_free (buf);
}

void
e2ee_string_free (char *str)
{
  if (str == NULL)
    return;
  e2ee_wipe (str, strlen (str));
  g_free (str);
}

void
e2ee_bytes_free (GBytes *bytes)
{
  gsize len = 0;
  gpointer data;

  if (bytes == NULL)
    return;
  /* g_bytes_unref_to_data only hands the buffer over when we hold the
   * last reference; otherwise it copies, and we wipe our copy. */
  data = g_bytes_unref_to_data (bytes, &len);
  e2ee_secret_free (data, len);
}

void
e2ee_gstring_free (GString *str)
{
  if (str == NULL)
    return;
  e2ee_wipe (str->str, str->allocated_len);
  g_string_free (str, TRUE);
}

gboolean
e2ee_ct_equal (const void *a, const void *b, gsize len)
{
  const volatile guint8 *x = a;
  const volatile guint8 *y = b;
  guint8 diff = 0;

  for (gsize i = 0; i < len; i++)
    diff |= x[i] ^ y[i];
  return diff == 0;
}

/* ---- the key arena ---------------------------------------------------- */

#define REGION_SLOTS 1024                       /* 64 KiB per region */
#define REGION_BYTES (REGION_SLOTS * E2EE_SECURE_SLOT)
#define MAX_REGIONS (E2EE_SECURE_SLOTS / REGION_SLOTS)

typedef struct {
  guint8 *base;
  gboolean locked;
  guint used;
  guint64 bits[REGION_SLOTS / 64];
} Region;

static GMutex arena_lock;
static Region regions[MAX_REGIONS];
static guint n_regions;

static gboolean
region_add (void)
{
  Region *r;
  void *p;

  if (n_regions == MAX_REGIONS)
    return FALSE;
  p = mmap (NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return FALSE;
#ifdef MADV_DONTDUMP
  madvise (p, REGION_BYTES, MADV_DONTDUMP);
#endif
  r = &regions[n_regions++];
  r->base = p;
  /* Best effort: an unprivileged process may lock only a little. */
  r->locked = mlock (p, REGION_BYTES) == 0;
  return TRUE;
}

guint8 *
e2ee_secure_alloc (gsize len)
{
  guint8 *out = NULL;

  if (len == 0 || len > E2EE_SECURE_SLOT)
    return e2ee_secret_alloc (len);
  g_mutex_lock (&arena_lock);
  for (guint i = 0; out == NULL; i++)
    {
      Region *r;

      if (i == n_regions && !region_add ())
        break;
      r = &regions[i];
      if (r->used == REGION_SLOTS)
        continue;
      for (guint w = 0; w < REGION_SLOTS / 64 && out == NULL; w++)
        if (r->bits[w] != G_MAXUINT64)
          {
            guint b = (guint) __builtin_ctzll (~r->bits[w]);
            r->bits[w] |= G_GUINT64_CONSTANT (1) << b;
            r->used++;
            out = r->base + (gsize) (w * 64 + b) * E2EE_SECURE_SLOT;
          }
    }
  g_mutex_unlock (&arena_lock);
  /* Slots are wiped when freed and zero when first mapped. */
  return out != NULL ? out : e2ee_secret_alloc (len);
}

static Region *
region_of (const void *buf)
{
  for (guint i = 0; i < n_regions; i++)
    if ((const guint8 *) buf >= regions[i].base
        && (const guint8 *) buf < regions[i].base + REGION_BYTES)
      return &regions[i];
  return NULL;
}

void
e2ee_secure_free (void *buf, gsize len)
{
  Region *r;

  if (buf == NULL)
    return;
  g_mutex_lock (&arena_lock);
  r = region_of (buf);
  if (r != NULL)
    {
      gsize slot = (gsize) ((guint8 *) buf - r->base) / E2EE_SECURE_SLOT;

      e2ee_wipe (r->base + slot * E2EE_SECURE_SLOT, E2EE_SECURE_SLOT);
      g_assert (r->bits[slot / 64] & (G_GUINT64_CONSTANT (1) << (slot % 64)));
      r->bits[slot / 64] &= ~(G_GUINT64_CONSTANT (1) << (slot % 64));
      r->used--;
    }
  g_mutex_unlock (&arena_lock);
  if (r == NULL)
    e2ee_secret_free (buf, len);
}

gboolean
e2ee_secure_owns (const void *buf, gboolean *locked)
{
  Region *r;

  g_mutex_lock (&arena_lock);
  r = region_of (buf);
  if (locked)
    *locked = r != NULL && r->locked;
  g_mutex_unlock (&arena_lock);
  return r != NULL;
}
