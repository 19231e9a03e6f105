/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-gcrypt.h"
#include "e2ee-test-util.h"

char *
e2ee_test_data_path (const char *relative)
{
  const char *dir = g_getenv ("E2EE_TEST_DATA");
  return g_build_filename (dir ? dir : E2EE_TEST_DATA, relative, NULL);
}

JsonNode *
e2ee_test_load_json (const char *relative)
{
  g_autofree char *path = e2ee_test_data_path (relative);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

guint8 *
e2ee_test_unhex (const char *hex, gsize *len)
{
  gsize n = strlen (hex);
  guint8 *out;

  g_assert_cmpuint (n % 2, ==, 0);
  out = g_malloc (n / 2 + 1);
  for (gsize i = 0; i < n / 2; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]);
      int lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      g_assert_true (hi >= 0 && lo >= 0);
      out[i] = (guint8) (hi << 4 | lo);
    }
  *len = n / 2;
  return out;
}

char *
e2ee_test_hex (const guint8 *data, gsize len)
{
  GString *s = g_string_sized_new (len * 2);
  for (gsize i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", data[i]);
  return g_string_free (s, FALSE);
}

void
e2ee_test_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  /* Tests play the application: initialise libgcrypt before the library
   * does, the way Pidgin would. */
  if (!gcry_control (GCRYCTL_INITIALIZATION_FINISHED_P))
    {
      gcry_check_version (NULL);
      gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
  g_assert_true (e2ee_gcrypt_init (NULL));
}
