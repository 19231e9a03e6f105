/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

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
