/* P-256 keys as JWK: every rejection path with its error code, thumbprints,
 * JWK Sets, invalid-curve points and ECDH.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE 1 /* memmem */
#include <gcrypt.h>
#include <string.h>

#include "e2ee-b64.h"
#include "e2ee-error.h"
#include "e2ee-jwk.h"
#include "e2ee-keyset.h"
#include "e2ee-prekey.h"
#include "e2ee-wipe.h"
#include "e2ee-test-util.h"

/* libgcrypt allocates its entropy collector's state on the first strong
 * random request and never frees it; not a leak of ours.  Weak, so a
 * project-wide definition takes precedence. */
const char *__lsan_default_suppressions (void);
__attribute__ ((weak)) const char *
__lsan_default_suppressions (void)
{
  return "leak:libgcrypt.so\n";
}

/* Freed-memory watch: this program's free() and realloc() stand in for
 * libc's (every library in the process calls them), and while a pattern is
 * set they report whether a block handed back still holds it.  Not under
 * a sanitizer, which needs its own allocator. */
#if defined(__SANITIZE_ADDRESS__)
/* gcc with -fsanitize=address: no watch */
#elif defined(__has_feature)
#if !__has_feature(address_sanitizer)
#define WATCH_FREES 1
#endif
#else
#define WATCH_FREES 1
#endif

#ifdef WATCH_FREES
#include <malloc.h>
extern void __libc_free (void *);
extern void *__libc_malloc (size_t);
static const char *watch_pattern;
static guint watch_hits;

static void
watch_block (void *p)
{
  if (p != NULL && watch_pattern != NULL
      && memmem (p, malloc_usable_size (p), watch_pattern, strlen (watch_pattern)) != NULL)
    watch_hits++;
}

void free (void *p);
void
free (void *p)
{
  watch_block (p);
  __libc_free (p);
}

void *realloc (void *p, size_t n);
void *
realloc (void *p, size_t n)
{
  void *q;
  size_t old;

  if (p == NULL)
    return __libc_malloc (n);
  if (n == 0)
    {
      free (p);
      return NULL;
    }
  /* Always move, so the old block is seen by free(). */
  if ((q = __libc_malloc (n)) == NULL)
    return NULL;
  old = malloc_usable_size (p);
  memcpy (q, p, MIN (old, n));
  free (p);
  return q;
}
#endif

/* "alice" and "bob" of tests/vectors/protocol-v1.json. */
#define AX "BXxh-IWc_0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8c"
#define AY "uRhRFAHuBhQgNckfOSLIf-PbFTRs0912HC7zEcoiSnY"
#define AD "3qiwc4HaXtw87jORTjqnJ7iyTdikxYsGq4dpC_ezUuE"
#define AKID "U5spmta66Gu22hFYaLqeoSrmdoHZAtTJA5LxFjUHNpY"
#define BX "pz86-yxB7-ooS7qyxfxaPpANmSZdH8o8dMW7sr-nNno"
#define BY "MS7ESXKoiDY4NclInW7RuRhHKP5YWReP9bTJAlQIDX8"
#define BD "fMq2OI9cp4wcUpBTfEWyX5F68hVn_8rRC-bVJfoVVXk"

#define P256_P "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
#define P256_N "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"

static char *
b64_of_hex (const char *hex)
{
  gsize len;
  g_autofree guint8 *raw = e2ee_test_unhex (hex, &len);
  return e2ee_b64url_encode (raw, len);
}

static char *
jwk3 (const char *x, const char *y, const char *d)
{
  if (d)
    return g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"%s\"}",
                            x, y, d);
  return g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
}

/* Imports @json and checks the error code (0: success). */
static void
expect_code (const char *json, gssize len, E2eeKeyExpect expect, gint code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) key = e2ee_key_from_jwk (json, len, expect, &error);

  if (code == 0)
    {
      g_assert_no_error (error);
      g_assert_nonnull (key);
    }
  else
    {
      if (key != NULL || error == NULL || error->code != code)
        g_test_message ("input: %s", json);
      g_assert_null (key);
      g_assert_error (error, E2EE_ERROR, code);
      /* Messages never echo key material. */
      g_assert_null (strstr (error->message, AD));
    }
}

static void
test_valid (void)
{
  g_autofree char *pub = jwk3 (AX, AY, NULL);
  g_autofree char *priv = jwk3 (AX, AY, AD);
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) key = NULL;
  g_autofree char *extra = NULL;

  expect_code (pub, -1, E2EE_KEY_EXPECT_PUBLIC, 0);
  expect_code (pub, -1, E2EE_KEY_EXPECT_ANY, 0);
  expect_code (priv, -1, E2EE_KEY_EXPECT_PRIVATE, 0);
  expect_code (priv, -1, E2EE_KEY_EXPECT_ANY, 0);
  /* Explicit length, not NUL-terminated. */
  {
    g_autofree char *padded = g_strconcat (pub, "GARBAGE", NULL);
    expect_code (padded, (gssize) strlen (pub), E2EE_KEY_EXPECT_PUBLIC, 0);
  }
  /* Other members (as WebCrypto exports them) are ignored; whitespace ok. */
  extra = g_strdup_printf ("{ \"alg\" : \"ECDH-ES\", \"ext\": true, \"key_ops\": [\"deriveBits\"],\n"
                           "  \"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"%s\", \"y\": \"%s\","
                           "  \"kid\": \"%s\", \"e2ee_v\": [2, 1] }", AX, AY, AKID);
  key = e2ee_key_from_jwk (extra, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (e2ee_key_get_caps (key), ==, 0x03);
  g_assert_cmpstr (e2ee_key_get_kid (key), ==, AKID);
  g_assert_false (e2ee_key_has_private (key));
}

static void
test_syntax (void)
{
  g_autofree char *dup_x = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"x\":\"%s\"}",
                                            BX, AY, AX);
  g_autofree char *esc = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"\\u0078\":\"%s\",\"y\":\"%s\"}",
                                          AX, AY);
  g_autofree char *deep = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                                           "\"z\":[[[1]]]}", AX, AY);
  g_autofree char *pub = jwk3 (AX, AY, NULL);
  g_autofree char *trailing = g_strdup_printf ("%s}", pub);
  g_autofree char *two = g_strdup_printf ("%s%s", pub, pub);
  const char *non_objects[] = { "", "[]", "\"EC\"", "null", "42", "{", "{\"kty\":\"EC\"",
                                "{\"kty\":\"EC\",}", "{'kty':'EC'}" };

  /* json-glib extensions that could hide a second "x" from the duplicate
   * check: single-quoted names and comments. */
  const char *extensions[] = {
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" BX "\",\"y\":\"" AY "\",'x':\"" AX "\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" BX "\",/* \" */\"y\":\"" AY "\",\"x\":\"" AX "\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\"} // end",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"n\":0x10}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (non_objects); i++)
    expect_code (non_objects[i], -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_SYNTAX);
  for (guint i = 0; i < G_N_ELEMENTS (extensions); i++)
    expect_code (extensions[i], -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_SYNTAX);
  expect_code (dup_x, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  expect_code (esc, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  expect_code (deep, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  expect_code (trailing, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  expect_code (two, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  /* An embedded NUL inside the given length. */
  {
    g_autofree char *nul = g_strdup (pub);
    nul[10] = '\0';
    expect_code (nul, (gssize) strlen (pub), E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  }
}

static void
test_non_string_members (void)
{
  const char *templates[] = {
    "{\"kty\":1,\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\"}",
    "{\"kty\":\"EC\",\"crv\":null,\"x\":\"" AX "\",\"y\":\"" AY "\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":[\"" AX "\"],\"y\":\"" AY "\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":{\"v\":\"" AY "\"}}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"d\":true}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"kid\":7}",
    /* e2ee_v: a non-empty array of versions 1..64 including 1 (versions
     * above 4 are ignored, not refused: see test below). */
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":1}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":[]}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":[2]}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":[0,1]}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":[1,65]}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":[\"1\"]}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\",\"e2ee_v\":[1.0]}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (templates); i++)
    expect_code (templates[i], -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_SYNTAX);
}

static void
test_missing (void)
{
  expect_code ("{\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\"}", -1,
               E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_MISSING);
  expect_code ("{\"kty\":\"EC\",\"x\":\"" AX "\",\"y\":\"" AY "\"}", -1,
               E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_MISSING);
  expect_code ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"y\":\"" AY "\"}", -1,
               E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_MISSING);
  expect_code ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\"}", -1,
               E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_MISSING);
  expect_code ("{}", -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_MISSING);
  /* d missing where a private key is expected. */
  expect_code ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY "\"}", -1,
               E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_MISSING);
}

static void
test_kty_crv (void)
{
  const char *ktys[] = { "RSA", "OKP", "ec", "EC ", "oct", "" };
  const char *crvs[] = { "P-384", "P-521", "secp256k1", "p-256", "P256", "X25519", "" };

  for (guint i = 0; i < G_N_ELEMENTS (ktys); i++)
    {
      g_autofree char *j = g_strdup_printf ("{\"kty\":\"%s\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
                                            ktys[i], AX, AY);
      expect_code (j, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_KTY);
    }
  for (guint i = 0; i < G_N_ELEMENTS (crvs); i++)
    {
      g_autofree char *j = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
                                            crvs[i], AX, AY);
      expect_code (j, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_CRV);
    }
}

static void
test_base64 (void)
{
  /* AX with one change each; all would decode with a lenient decoder. */
  const char *bad_x[] = {
    AX "=",                                             /* padding */
    "BXxh+IWc_0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8c",      /* '+' (standard alphabet) */
    "BXxh-IWc/0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8c",      /* '/' */
    "BXxh-IWc_0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8c ",     /* whitespace */
    " BXxh-IWc_0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8c",
    "BXxh-IWc_0q3au_IlRDu\no7Rzf4wSj00p-MPLGgPGz8c",
    "BXxh-IWc_0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8d",      /* trailing bits set */
    AX "AA",                                            /* length 1 mod 4 (45) */
    "BXxh-IWc_0q3au_IlRDuo7Rzf4wSj00p-MPLGgPGz8\xc3\xa9",  /* non-ASCII */
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad_x); i++)
    {
      /* JSON escapes for the control characters; UTF-8 stays as it is. */
      g_autofree char *esc = g_strescape (bad_x[i], "\xc3\xa9");
      g_autofree char *jx = jwk3 (esc, AY, NULL);
      g_autofree char *jy = jwk3 (AX, esc, NULL);
      g_autofree char *jd = jwk3 (AX, AY, esc);
      expect_code (jx, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_BASE64);
      expect_code (jy, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_BASE64);
      expect_code (jd, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_BASE64);
    }
}

static void
test_length (void)
{
  /* AX without its last byte, and AX with a leading zero byte. */
  g_autofree char *h31 = b64_of_hex ("057c61f8859cff4ab76aefc89510eea3b4737f8c128f4d29f8c3cb1a03c6cf");
  g_autofree char *h33 = b64_of_hex ("00057c61f8859cff4ab76aefc89510eea3b4737f8c128f4d29f8c3cb1a03c6cfc7");
  g_autofree char *empty = g_strdup ("");
  const char *lens[] = { h31, h33, empty };

  for (guint i = 0; i < G_N_ELEMENTS (lens); i++)
    {
      g_autofree char *jx = jwk3 (lens[i], AY, NULL);
      g_autofree char *jy = jwk3 (AX, lens[i], NULL);
      g_autofree char *jd = jwk3 (AX, AY, lens[i]);
      expect_code (jx, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_LENGTH);
      expect_code (jy, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_LENGTH);
      expect_code (jd, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_LENGTH);
    }
  /* The 33-byte form is the same number with a leading zero: still refused. */
  {
    gsize len;
    g_autofree guint8 *raw = e2ee_b64url_decode (h33, strlen (h33), &len, NULL);
    gsize ax_len;
    g_autofree guint8 *ax = e2ee_b64url_decode (AX, strlen (AX), &ax_len, NULL);
    g_assert_cmpuint (len, ==, 33);
    g_assert_cmpmem (raw + 1, 32, ax, 32);
  }
}

static void
test_range (void)
{
  g_autofree char *p = b64_of_hex (P256_P);
  g_autofree char *ff = b64_of_hex ("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
  g_autofree char *zero = b64_of_hex ("0000000000000000000000000000000000000000000000000000000000000000");
  g_autofree char *one = b64_of_hex ("0000000000000000000000000000000000000000000000000000000000000001");
  g_autofree char *n = b64_of_hex (P256_N);

  /* Coordinates >= p. */
  {
    g_autofree char *a = jwk3 (p, AY, NULL), *b = jwk3 (AX, p, NULL), *c = jwk3 (ff, AY, NULL);
    expect_code (a, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_RANGE);
    expect_code (b, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_RANGE);
    expect_code (c, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_RANGE);
  }
  /* Scalars 0, n, 2^256-1 are outside [1, n-1]. */
  {
    g_autofree char *a = jwk3 (AX, AY, zero), *b = jwk3 (AX, AY, n), *c = jwk3 (AX, AY, ff);
    expect_code (a, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_RANGE);
    expect_code (b, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_RANGE);
    expect_code (c, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_RANGE);
  }
  /* d = 1 is in range; G itself is its public point. */
  {
    g_autofree char *gx = b64_of_hex ("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
    g_autofree char *gy = b64_of_hex ("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
    g_autofree char *a = jwk3 (gx, gy, one);
    expect_code (a, -1, E2EE_KEY_EXPECT_PRIVATE, 0);
  }
}

static void
test_curve_checks (void)
{
  g_autofree char *zero = b64_of_hex ("0000000000000000000000000000000000000000000000000000000000000000");
  /* y of alice + 1: not on the curve. */
  g_autofree char *y1 = NULL;
  {
    gsize len;
    g_autofree guint8 *y = e2ee_b64url_decode (AY, strlen (AY), &len, NULL);
    y[31] ^= 1;
    y1 = e2ee_b64url_encode (y, 32);
  }
  {
    g_autofree char *a = jwk3 (AX, y1, NULL);
    g_autofree char *b = jwk3 (zero, zero, NULL);
    g_autofree char *c = jwk3 (AX, y1, AD);
    g_autofree char *d = jwk3 (zero, zero, AD);
    expect_code (a, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_NOT_ON_CURVE);
    expect_code (b, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_INFINITY);
    expect_code (c, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_NOT_ON_CURVE);
    expect_code (d, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_INFINITY);
  }
  /* The same checks through the raw constructor. */
  {
    guint8 x[32], y[32];
    gsize len;
    g_autofree guint8 *ax = e2ee_b64url_decode (AX, strlen (AX), &len, NULL);
    g_autofree guint8 *ay = e2ee_b64url_decode (AY, strlen (AY), &len, NULL);
    g_autoptr (GError) error = NULL;
    g_autoptr (E2eeKey) ok = NULL;

    memset (x, 0, 32);
    memset (y, 0, 32);
    g_assert_null (e2ee_key_new_public (x, y, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_INFINITY);
    g_clear_error (&error);
    memcpy (x, ax, 32);
    memcpy (y, ay, 32);
    y[0] ^= 0x40;
    g_assert_null (e2ee_key_new_public (x, y, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_NOT_ON_CURVE);
    g_clear_error (&error);
    memset (x, 0xff, 32);
    g_assert_null (e2ee_key_new_public (x, ay, &error));
    g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_RANGE);
    g_clear_error (&error);
    ok = e2ee_key_new_public (ax, ay, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (e2ee_key_get_kid (ok), ==, AKID);
    g_assert_cmpuint (e2ee_key_get_caps (ok), ==, E2EE_CAPS_V1);
  }
}

/* The point (5, 0) lies on y^2 = x^3 - 3x + b' with b' = -(5^3 - 15) mod p,
 * a curve that differs from P-256 only in b.  There it has order 2, so
 * d * (5, 0) is (5, 0) or infinity by the parity of d: a peer offering it
 * would learn a bit of our scalar per exchange.  libgcrypt's point
 * multiplication never looks at b, so the key layer must refuse it. */
static void
test_invalid_curve (void)
{
  guint8 x[32] = { 0 }, y[32] = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *bx = NULL, *by = NULL, *json = NULL;
  gcry_ctx_t ctx = NULL;
  gcry_mpi_point_t pt, r;
  gcry_mpi_t mx, my, one, d_even, d_odd, rx, ry;

  x[31] = 5;
  g_assert_null (e2ee_key_new_public (x, y, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_NOT_ON_CURVE);
  g_clear_error (&error);
  bx = e2ee_b64url_encode (x, 32);
  by = e2ee_b64url_encode (y, 32);
  json = jwk3 (bx, by, NULL);
  expect_code (json, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_NOT_ON_CURVE);

  /* What would happen without the check: the unchecked multiplication
   * leaks the scalar's parity. */
  g_assert_cmpint (gcry_mpi_ec_new (&ctx, NULL, "NIST P-256"), ==, 0);
  mx = gcry_mpi_set_ui (NULL, 5);
  my = gcry_mpi_set_ui (NULL, 0);
  one = gcry_mpi_set_ui (NULL, 1);
  pt = gcry_mpi_point_set (NULL, mx, my, one);
  g_assert_false (gcry_mpi_ec_curve_point (pt, ctx));
  d_even = gcry_mpi_set_ui (NULL, 1000);
  d_odd = gcry_mpi_set_ui (NULL, 1001);
  r = gcry_mpi_point_new (0);
  rx = gcry_mpi_new (0);
  ry = gcry_mpi_new (0);
  gcry_mpi_ec_mul (r, d_odd, pt, ctx);
  g_assert_cmpint (gcry_mpi_ec_get_affine (rx, ry, r, ctx), ==, 0);
  g_assert_cmpint (gcry_mpi_cmp (rx, mx), ==, 0);
  gcry_mpi_ec_mul (r, d_even, pt, ctx);
  g_assert_cmpint (gcry_mpi_ec_get_affine (rx, ry, r, ctx), !=, 0); /* infinity */
  gcry_mpi_release (rx);
  gcry_mpi_release (ry);
  gcry_mpi_point_release (r);
  gcry_mpi_release (d_even);
  gcry_mpi_release (d_odd);
  gcry_mpi_point_release (pt);
  gcry_mpi_release (mx);
  gcry_mpi_release (my);
  gcry_mpi_release (one);
  gcry_ctx_release (ctx);
}

static void
test_private_rules (void)
{
  g_autofree char *priv = jwk3 (AX, AY, AD);
  g_autofree char *mismatch = jwk3 (AX, AY, BD);
  g_autofree char *bob = jwk3 (BX, BY, BD);

  expect_code (priv, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_UNEXPECTED_PRIVATE);
  expect_code (mismatch, -1, E2EE_KEY_EXPECT_PRIVATE, E2EE_ERROR_JWK_KEY_MISMATCH);
  expect_code (mismatch, -1, E2EE_KEY_EXPECT_ANY, E2EE_ERROR_JWK_KEY_MISMATCH);
  expect_code (bob, -1, E2EE_KEY_EXPECT_PRIVATE, 0);
}

static void
test_kid (void)
{
  g_autofree char *good = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}",
                                           AX, AY, AKID);
  g_autofree char *other = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}",
                                            BX, BY, AKID);
  g_autofree char *name = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"alice\"}",
                                           AX, AY);

  expect_code (good, -1, E2EE_KEY_EXPECT_PUBLIC, 0);
  expect_code (other, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SET);
  expect_code (name, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SET);
}

/* RFC 7638 computed here from its definition, and pinned by the vector
 * file (whose values the WebCrypto side computes on its own). */
static void
test_thumbprint (void)
{
  g_autofree char *pub = jwk3 (AX, AY, NULL);
  g_autoptr (E2eeKey) key = e2ee_key_from_jwk (pub, -1, E2EE_KEY_EXPECT_PUBLIC, NULL);
  const char *canon = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" AX "\",\"y\":\"" AY "\"}";
  guint8 digest[32];
  g_autofree char *kid = NULL;
  JsonNode *root = e2ee_test_load_json ("vectors/protocol-v1.json");
  JsonArray *ids = json_object_get_array_member (json_node_get_object (root), "identities");
  JsonObject *alice = json_array_get_object_element (ids, 0);

  gcry_md_hash_buffer (GCRY_MD_SHA256, digest, canon, strlen (canon));
  g_assert_cmpmem (e2ee_key_get_thumbprint (key), 32, digest, 32);
  kid = e2ee_b64url_encode (digest, 32);
  g_assert_cmpstr (e2ee_key_get_kid (key), ==, kid);
  g_assert_cmpstr (kid, ==, AKID);
  g_assert_cmpmem (e2ee_key_get_device_id (key), 4, digest, 4);
  g_assert_cmpstr (json_object_get_string_member (alice, "key"), ==, "alice");
  g_assert_cmpstr (json_object_get_string_member (alice, "kid"), ==, kid);
  json_node_unref (root);
}

static void
test_roundtrip (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) key = e2ee_key_generate (&error);
  g_autoptr (E2eeKey) back = NULL;
  g_autoptr (E2eeKey) pub = NULL;
  g_autoptr (E2eeKey) pub_back = NULL;
  g_autoptr (E2eeKey) v2 = NULL;
  char *priv_json;
  g_autofree char *pub_json = NULL;
  g_autofree char *meta_json = NULL;
  g_autoptr (JsonObject) obj = NULL;

  g_assert_no_error (error);
  g_assert_true (e2ee_key_has_private (key));
  g_assert_cmpuint (e2ee_key_get_caps (key), ==, E2EE_CAPS_SUPPORTED);

  priv_json = e2ee_key_to_jwk (key, TRUE, FALSE);
  g_assert_nonnull (strstr (priv_json, "\"d\":\""));
  back = e2ee_key_from_jwk (priv_json, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_assert_no_error (error);
  g_assert_true (e2ee_key_equal (key, back));
  g_assert_true (e2ee_key_has_private (back));
  e2ee_string_free (priv_json);

  pub = e2ee_key_public_copy (key);
  g_assert_false (e2ee_key_has_private (pub));
  /* with_private on a public key has nothing to add. */
  pub_json = e2ee_key_to_jwk (pub, TRUE, FALSE);
  g_assert_null (strstr (pub_json, "\"d\""));
  pub_back = e2ee_key_from_jwk (pub_json, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
  g_assert_no_error (error);
  g_assert_true (e2ee_key_equal (pub, pub_back));
  g_assert_cmpstr (e2ee_key_get_kid (pub_back), ==, e2ee_key_get_kid (key));

  /* Meta: kid and e2ee_v, and caps survive. */
  v2 = e2ee_key_with_caps (key, 0x03);
  g_assert_true (e2ee_key_has_private (v2));
  meta_json = e2ee_key_to_jwk (v2, FALSE, TRUE);
  g_assert_nonnull (strstr (meta_json, "\"e2ee_v\":[1,2]"));
  g_assert_nonnull (strstr (meta_json, e2ee_key_get_kid (key)));
  {
    g_autoptr (E2eeKey) k = e2ee_key_from_jwk (meta_json, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (e2ee_key_get_caps (k), ==, 0x03);
    /* Caps do not change the thumbprint. */
    g_assert_cmpstr (e2ee_key_get_kid (k), ==, e2ee_key_get_kid (key));
  }
  obj = e2ee_key_to_jwk_object (key, FALSE, FALSE);
  g_assert_cmpstr (json_object_get_string_member (obj, "kty"), ==, "EC");
  g_assert_cmpstr (json_object_get_string_member (obj, "crv"), ==, "P-256");
  g_assert_false (json_object_has_member (obj, "d"));
  g_assert_false (json_object_has_member (obj, "kid"));
}

static void
test_ecdh (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) a = e2ee_key_generate (&error);
  g_autoptr (E2eeKey) b = e2ee_key_generate (&error);
  g_autoptr (E2eeKey) a_pub = e2ee_key_public_copy (a);
  g_autoptr (E2eeKey) b_pub = e2ee_key_public_copy (b);
  guint8 z1[32], z2[32], z3[32];

  g_assert_no_error (error);
  g_assert_true (e2ee_key_ecdh (a, b_pub, z1, &error));
  g_assert_true (e2ee_key_ecdh (b, a_pub, z2, &error));
  g_assert_true (e2ee_key_ecdh (a, b, z3, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (z1, 32, z2, 32);
  g_assert_cmpmem (z1, 32, z3, 32);
  /* d*G's own ECDH with itself is x(d^2 G), different from the pair's. */
  g_assert_true (e2ee_key_ecdh (a, a_pub, z3, &error));
  g_assert_true (memcmp (z1, z3, 32) != 0);
  /* Only with a private part. */
  g_assert_false (e2ee_key_ecdh (a_pub, b_pub, z3, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_FAILED);
}

/* ECDH with d = 1 gives the peer's own x coordinate. */
static void
test_ecdh_known (void)
{
  g_autofree char *one = b64_of_hex ("0000000000000000000000000000000000000000000000000000000000000001");
  g_autofree char *gx = b64_of_hex ("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
  g_autofree char *gy = b64_of_hex ("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
  g_autofree char *json = jwk3 (gx, gy, one);
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) k1 = e2ee_key_from_jwk (json, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_autofree char *pub = jwk3 (AX, AY, NULL);
  g_autoptr (E2eeKey) alice = e2ee_key_from_jwk (pub, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
  guint8 z[32];

  g_assert_no_error (error);
  g_assert_true (e2ee_key_ecdh (k1, alice, z, &error));
  g_assert_cmpmem (z, 32, e2ee_key_get_x (alice), 32);
}

/* ---- JWK Set ------------------------------------------------------------ */

static char *
set_entry (const char *x, const char *y, const char *kid)
{
  return g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                          "\"kid\":\"%s\",\"e2ee_v\":[1]}", x, y, kid);
}

static void
expect_set (const char *json, gint code, guint n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) set = e2ee_keyset_parse (json, -1, &error);

  if (code == 0)
    {
      g_assert_no_error (error);
      g_assert_cmpuint (set->len, ==, n);
    }
  else
    {
      if (set != NULL || error == NULL || error->code != code)
        g_test_message ("input: %s", json);
      g_assert_null (set);
      g_assert_error (error, E2EE_ERROR, code);
    }
}

static void
test_keyset (void)
{
  g_autoptr (E2eeKey) bob = e2ee_key_from_jwk ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" BX
                                               "\",\"y\":\"" BY "\"}", -1,
                                               E2EE_KEY_EXPECT_PUBLIC, NULL);
  g_autofree char *ea = set_entry (AX, AY, AKID);
  g_autofree char *eb = set_entry (BX, BY, e2ee_key_get_kid (bob));
  g_autofree char *one = g_strdup_printf ("{\"keys\":[%s]}", ea);
  g_autofree char *two = g_strdup_printf ("{\"keys\":[%s,%s]}", ea, eb);
  g_autofree char *dup = g_strdup_printf ("{\"keys\":[%s,%s,%s]}", ea, eb, ea);
  g_autofree char *plain = jwk3 (AX, AY, NULL);
  g_autofree char *wrong = set_entry (BX, BY, AKID);
  g_autofree char *nokid = g_strdup_printf ("{\"keys\":[%s]}", plain);
  g_autofree char *badkid = g_strdup_printf ("{\"keys\":[%s]}", wrong);
  g_autofree char *priv = g_strdup_printf ("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                                           "\"y\":\"%s\",\"d\":\"%s\",\"kid\":\"%s\"}]}",
                                           AX, AY, AD, AKID);
  g_autofree char *dupkeys = g_strdup_printf ("{\"keys\":[%s],\"keys\":[%s]}", ea, eb);
  g_autofree char *offcurve = NULL;
  GString *many = g_string_new ("{\"keys\":[");
  GString *sixteen = NULL;
  g_autoptr (GPtrArray) gen = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);

  expect_set (one, 0, 1);
  expect_set (two, 0, 2);
  /* Extra members of the set are ignored (RFC 7517 5). */
  {
    g_autofree char *extra = g_strdup_printf ("{\"note\":\"hi\",\"keys\":[%s]}", ea);
    expect_set (extra, 0, 1);
  }
  expect_set (dup, E2EE_ERROR_JWK_SET, 0);
  expect_set (nokid, E2EE_ERROR_JWK_SET, 0);
  expect_set (badkid, E2EE_ERROR_JWK_SET, 0);
  expect_set (priv, E2EE_ERROR_JWK_UNEXPECTED_PRIVATE, 0);
  expect_set (dupkeys, E2EE_ERROR_JWK_SET, 0);
  expect_set ("{\"keys\":[]}", E2EE_ERROR_JWK_SET, 0);
  expect_set ("{\"keys\":{}}", E2EE_ERROR_JWK_SET, 0);
  expect_set ("{\"keys\":[1]}", E2EE_ERROR_JWK_SET, 0);
  expect_set ("{\"keys\":[[]]}", E2EE_ERROR_JWK_SET, 0);
  expect_set ("{\"key\":[]}", E2EE_ERROR_JWK_SET, 0);
  expect_set ("[]", E2EE_ERROR_JWK_SET, 0);
  expect_set ("", E2EE_ERROR_JWK_SET, 0);
  expect_set ("{\"keys\":[{\"a\":[[[]]]}]}", E2EE_ERROR_JWK_SET, 0);
  /* An entry's own error comes through with its code. */
  {
    gsize len;
    g_autofree guint8 *y = e2ee_b64url_decode (AY, strlen (AY), &len, NULL);
    g_autofree char *y1 = NULL;
    y[31] ^= 1;
    y1 = e2ee_b64url_encode (y, 32);
    offcurve = g_strdup_printf ("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                                "\"y\":\"%s\",\"kid\":\"x\"}]}", AX, y1);
    expect_set (offcurve, E2EE_ERROR_JWK_NOT_ON_CURVE, 0);
  }

  /* 16 keys are fine, 17 are not. */
  for (guint i = 0; i < E2EE_KEYSET_MAX + 1; i++)
    {
      E2eeKey *k = e2ee_key_generate (NULL);
      g_autofree char *pub = e2ee_key_to_jwk (k, FALSE, TRUE);
      g_ptr_array_add (gen, k);
      if (i == E2EE_KEYSET_MAX)
        {
          sixteen = g_string_new (many->str);
          g_string_truncate (sixteen, sixteen->len - 1);
          g_string_append (sixteen, "]}");
        }
      g_string_append_printf (many, "%s,", pub);
    }
  g_string_truncate (many, many->len - 1);
  g_string_append (many, "]}");
  expect_set (sixteen->str, 0, E2EE_KEYSET_MAX);
  expect_set (many->str, E2EE_ERROR_JWK_SET, 0);
  g_string_free (many, TRUE);
  g_string_free (sixteen, TRUE);

  /* Serialise and parse back: same keys, same caps, no private parts. */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) back = NULL;
    g_autofree char *json = NULL;
    g_ptr_array_set_size (gen, 2);
    g_ptr_array_add (gen, e2ee_key_with_caps (g_ptr_array_index (gen, 1), 0x05));
    g_ptr_array_remove_index (gen, 1);
    json = e2ee_keyset_to_json (gen);
    g_assert_null (strstr (json, "\"d\""));
    back = e2ee_keyset_parse (json, -1, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (back->len, ==, 2);
    for (guint i = 0; i < 2; i++)
      {
        g_assert_true (e2ee_key_equal (back->pdata[i], gen->pdata[i]));
        g_assert_cmpuint (e2ee_key_get_caps (back->pdata[i]), ==,
                          e2ee_key_get_caps (gen->pdata[i]));
        g_assert_false (e2ee_key_has_private (back->pdata[i]));
      }
  }
}

/* Reading and writing a private JWK leaves no copy of "d" in any block
 * handed back to the allocator (json-glib's scanner, tree and copies, or
 * growing strings): the CLI's keygen, public and load paths. */
static void
test_no_freed_d (void)
{
#ifdef WATCH_FREES
  static const char text[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" AX "\",\"y\":\"" AY
                             "\",\"d\":\"" AD "\",\"kid\":\"" AKID "\",\"e2ee_v\":[1]}";
  g_autoptr (GError) error = NULL;
  E2eeKey *key;
  char *out;

  /* The watch itself works first: a freed copy is seen.  Under valgrind,
   * which replaces the allocator, our free() is never called: skip there
   * (the plain run checks it). */
  watch_hits = 0;
  watch_pattern = AD;
  g_free (g_strdup (text));
  watch_pattern = NULL;
  if (watch_hits == 0 && strstr (g_getenv ("LD_PRELOAD") ? g_getenv ("LD_PRELOAD") : "",
                                  "vgpreload") != NULL)
    {
      g_test_skip ("the free() watch does not see frees under valgrind");
      return;
    }
  g_assert_cmpuint (watch_hits, ==, 1);

  watch_hits = 0;
  watch_pattern = AD;
  key = e2ee_key_from_jwk (text, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
  g_assert_no_error (error);
  out = e2ee_key_to_jwk (key, TRUE, TRUE);
  g_assert_cmpstr (out, ==, text);
  e2ee_string_free (out);
  out = e2ee_key_to_jwk (key, FALSE, TRUE);
  g_assert_null (strstr (out, AD));
  g_free (out);
  e2ee_key_unref (key);
  /* Private where a public key is expected: refused, and no copy left. */
  g_assert_null (e2ee_key_from_jwk (text, -1, E2EE_KEY_EXPECT_PUBLIC, &error));
  g_assert_error (error, E2EE_ERROR, E2EE_ERROR_JWK_UNEXPECTED_PRIVATE);
  watch_pattern = NULL;
  g_assert_cmpuint (watch_hits, ==, 0);
#else
  g_test_skip ("the free() watch cannot run beside a sanitizer");
#endif
}

/* ---- protocol-v2 attachments (e2ee_sig, e2ee_pk) ------------------------ */

/* The fixed keys and record of tests/vectors/v2-prekey.json. */
typedef struct {
  E2eeKey *identity;    /* public, caps V1|V2 */
  E2eeKey *sign_pub;
  GBytes *record;
  char *ix, *iy, *sig, *pk;  /* base64url of x, y, X||Y of the signing key, record */
} V2Fixture;

static void
v2_fixture_load (V2Fixture *f)
{
  g_autoptr (JsonNode) root = e2ee_test_load_json ("vectors/v2-prekey.json");
  JsonObject *o = json_node_get_object (root);
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) ik = NULL;
  g_autoptr (E2eeKey) ik_pub = NULL;
  guint8 xy[64];
  gsize len;
  g_autofree guint8 *rec = e2ee_test_unhex (json_object_get_string_member (o, "record"), &len);

  ik = e2ee_key_from_jwk (json_object_get_string_member (o, "identity_jwk"), -1,
                          E2EE_KEY_EXPECT_PRIVATE, &error);
  g_assert_no_error (error);
  ik_pub = e2ee_key_public_copy (ik);
  f->identity = e2ee_key_with_caps (ik_pub, E2EE_CAPS_V1 | E2EE_CAPS_V2);
  f->sign_pub = e2ee_sign_public_from_jwk (json_object_get_string_member (o, "signing_jwk"),
                                           -1, &error);
  g_assert_no_error (error);
  f->record = g_bytes_new (rec, len);
  f->ix = e2ee_b64url_encode (e2ee_key_get_x (ik), 32);
  f->iy = e2ee_b64url_encode (e2ee_key_get_y (ik), 32);
  memcpy (xy, e2ee_key_get_x (f->sign_pub), 32);
  memcpy (xy + 32, e2ee_key_get_y (f->sign_pub), 32);
  f->sig = e2ee_b64url_encode (xy, 64);
  f->pk = e2ee_b64url_encode (rec, len);
}

static void
v2_fixture_clear (V2Fixture *f)
{
  e2ee_key_unref (f->identity);
  e2ee_key_unref (f->sign_pub);
  g_bytes_unref (f->record);
  g_free (f->ix);
  g_free (f->iy);
  g_free (f->sig);
  g_free (f->pk);
}

/* A public JWK of the fixture's identity with @tail members after "y". */
static char *
v2_jwk (const V2Fixture *f, const char *tail)
{
  return g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                          f->ix, f->iy, tail);
}

static char *
v2_tail (const char *v, const char *sig, const char *pk)
{
  GString *t = g_string_new (NULL);

  if (v)
    g_string_append_printf (t, ",\"e2ee_v\":%s", v);
  if (sig)
    g_string_append_printf (t, ",\"e2ee_sig\":%s", sig);
  if (pk)
    g_string_append_printf (t, ",\"e2ee_pk\":%s", pk);
  return g_string_free (t, FALSE);
}

static char *
quoted (const char *s)
{
  return g_strdup_printf ("\"%s\"", s);
}

static void
assert_attachments (const E2eeKey *key, const V2Fixture *f)
{
  g_assert_nonnull (e2ee_key_get_sign_pub (key));
  g_assert_true (e2ee_key_equal (e2ee_key_get_sign_pub (key), f->sign_pub));
  g_assert_false (e2ee_key_has_private (e2ee_key_get_sign_pub (key)));
  g_assert_true (g_bytes_equal (e2ee_key_get_prekey_record (key), f->record));
  g_assert_cmpuint (e2ee_key_get_caps (key) & E2EE_CAPS_V2, ==, E2EE_CAPS_V2);
}

static void
test_v2_export (void)
{
  V2Fixture f;
  g_autoptr (GError) error = NULL;
  g_autoptr (E2eeKey) key = NULL, back = NULL, priv = NULL, priv_back = NULL;
  g_autoptr (E2eeKey) plain = NULL;
  g_autofree char *text = NULL, *expected = NULL, *no_meta = NULL, *ptext = NULL;

  v2_fixture_load (&f);
  key = e2ee_key_with_v2 (f.identity, f.sign_pub, f.record);
  assert_attachments (key, &f);
  /* Members in the contract's order, nothing else. */
  expected = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                              "\"kid\":\"%s\",\"e2ee_v\":[1,2],\"e2ee_sig\":\"%s\","
                              "\"e2ee_pk\":\"%s\"}", f.ix, f.iy, e2ee_key_get_kid (key),
                              f.sig, f.pk);
  text = e2ee_key_to_jwk (key, FALSE, TRUE);
  g_assert_cmpstr (text, ==, expected);
  /* Not in the thumbprint. */
  g_assert_cmpstr (e2ee_key_get_kid (key), ==, e2ee_key_get_kid (f.identity));
  g_assert_true (e2ee_key_equal (key, f.identity));
  back = e2ee_key_from_jwk (text, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
  g_assert_no_error (error);
  assert_attachments (back, &f);
  g_assert_cmpuint (e2ee_key_get_caps (back), ==, E2EE_CAPS_V1 | E2EE_CAPS_V2);
  /* Without meta: the plain JWK only. */
  no_meta = e2ee_key_to_jwk (key, FALSE, FALSE);
  g_assert_null (strstr (no_meta, "e2ee_"));
  plain = e2ee_key_from_jwk (no_meta, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
  g_assert_no_error (error);
  g_assert_null (e2ee_key_get_sign_pub (plain));
  g_assert_null (e2ee_key_get_prekey_record (plain));

  /* The private text form writes the same members after "d". */
  {
    g_autoptr (JsonNode) root = e2ee_test_load_json ("vectors/v2-prekey.json");
    g_autoptr (E2eeKey) ik = e2ee_key_from_jwk (
      json_object_get_string_member (json_node_get_object (root), "identity_jwk"), -1,
      E2EE_KEY_EXPECT_PRIVATE, &error);
    g_autoptr (E2eeKey) ik2 = e2ee_key_with_caps (ik, E2EE_CAPS_V1 | E2EE_CAPS_V2);
    g_autofree char *tail = NULL;

    g_assert_no_error (error);
    priv = e2ee_key_with_v2 (ik2, f.sign_pub, f.record);
    g_assert_true (e2ee_key_has_private (priv));
    ptext = e2ee_key_to_jwk (priv, TRUE, TRUE);
    tail = g_strdup_printf (",\"e2ee_v\":[1,2],\"e2ee_sig\":\"%s\",\"e2ee_pk\":\"%s\"}",
                            f.sig, f.pk);
    g_assert_true (g_str_has_suffix (ptext, tail));
    g_assert_nonnull (strstr (ptext, "\"d\":"));
    priv_back = e2ee_key_from_jwk (ptext, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
    g_assert_no_error (error);
    assert_attachments (priv_back, &f);
    g_assert_true (e2ee_key_has_private (priv_back));
    /* The JsonObject form (JWK Sets, backups) is the same text. */
    {
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
      g_autofree char *otext = NULL;

      json_node_take_object (node, e2ee_key_to_jwk_object (priv, TRUE, TRUE));
      json_generator_set_root (gen, node);
      otext = json_generator_to_data (gen, NULL);
      g_assert_cmpstr (otext, ==, ptext);
      e2ee_wipe (otext, strlen (otext));
    }
    e2ee_wipe (ptext, strlen (ptext));
  }
  v2_fixture_clear (&f);
}

static void
test_v2_copies (void)
{
  V2Fixture f;
  g_autoptr (E2eeKey) key = NULL, copy = NULL, caps = NULL, v1 = NULL, none = NULL;
  g_autoptr (E2eeKey) from_v1 = NULL;
  g_autoptr (E2eeKey) v1_identity = NULL;
  g_autoptr (GError) error = NULL;

  v2_fixture_load (&f);
  key = e2ee_key_with_v2 (f.identity, f.sign_pub, f.record);
  copy = e2ee_key_public_copy (key);
  assert_attachments (copy, &f);
  caps = e2ee_key_with_caps (key, E2EE_CAPS_V1 | E2EE_CAPS_V2 | 0x04);
  assert_attachments (caps, &f);
  g_assert_cmpuint (e2ee_key_get_caps (caps), ==, 0x07);
  /* Without v2 in the caps the attachments go (no parser would take them). */
  v1 = e2ee_key_with_caps (key, E2EE_CAPS_V1);
  g_assert_null (e2ee_key_get_sign_pub (v1));
  g_assert_null (e2ee_key_get_prekey_record (v1));
  none = e2ee_key_with_v2 (key, NULL, NULL);
  g_assert_null (e2ee_key_get_sign_pub (none));
  g_assert_cmpuint (e2ee_key_get_caps (none), ==, E2EE_CAPS_V1 | E2EE_CAPS_V2);
  /* Attachments on a v1-only key bring v2 into its caps. */
  v1_identity = e2ee_key_with_caps (f.identity, E2EE_CAPS_V1);
  from_v1 = e2ee_key_with_v2 (v1_identity, f.sign_pub, f.record);
  assert_attachments (from_v1, &f);
  /* A private signing key is published by its public part only. */
  {
    g_autoptr (E2eeSignKey) sk = e2ee_sign_key_generate (&error);
    g_autoptr (E2eeKey) with_priv = NULL;
    g_autofree char *jwk = NULL;
    g_autoptr (E2eeKey) back = NULL;
    g_autoptr (E2eeKey) sk_pub_priv = NULL;

    g_assert_no_error (error);
    /* e2ee_sign_key_get_public is public already; make one with d. */
    {
      guint8 d[32];
      g_autofree char *dj = NULL;
      g_autofree char *dx = e2ee_b64url_encode (e2ee_key_get_x (e2ee_sign_key_get_public (sk)), 32);
      g_autofree char *dy = e2ee_b64url_encode (e2ee_key_get_y (e2ee_sign_key_get_public (sk)), 32);
      g_autofree char *dd = NULL;

      g_assert_true (e2ee_sign_key_to_bytes (sk, d));
      dd = e2ee_b64url_encode (d, 32);
      e2ee_wipe (d, sizeof d);
      dj = jwk3 (dx, dy, dd);
      sk_pub_priv = e2ee_key_from_jwk (dj, -1, E2EE_KEY_EXPECT_PRIVATE, &error);
      g_assert_no_error (error);
    }
    with_priv = e2ee_key_with_v2 (f.identity, sk_pub_priv, f.record);
    g_assert_false (e2ee_key_has_private (e2ee_key_get_sign_pub (with_priv)));
    g_assert_true (e2ee_key_equal (e2ee_key_get_sign_pub (with_priv), sk_pub_priv));
    jwk = e2ee_key_to_jwk (with_priv, FALSE, TRUE);
    back = e2ee_key_from_jwk (jwk, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
    g_assert_no_error (error);
    g_assert_true (e2ee_key_equal (e2ee_key_get_sign_pub (back), sk_pub_priv));
  }
  v2_fixture_clear (&f);
}

/* Misuse of e2ee_key_with_v2 is a programming error: a critical, no key. */
static void
test_v2_with_v2_misuse (void)
{
  if (g_test_subprocess ())
    {
      V2Fixture f;
      const char *which = g_getenv ("E2EE_V2_MISUSE");
      g_autoptr (GBytes) short_rec = NULL;
      E2eeKey *k = NULL;

      v2_fixture_load (&f);
      short_rec = g_bytes_new_from_bytes (f.record, 0, 193);
      if (g_strcmp0 (which, "sign-only") == 0)
        k = e2ee_key_with_v2 (f.identity, f.sign_pub, NULL);
      else if (g_strcmp0 (which, "record-only") == 0)
        k = e2ee_key_with_v2 (f.identity, NULL, f.record);
      else if (g_strcmp0 (which, "short-record") == 0)
        k = e2ee_key_with_v2 (f.identity, f.sign_pub, short_rec);
      else
        k = e2ee_key_with_v2 (f.identity, f.identity, f.record);
      g_assert_null (k);
      v2_fixture_clear (&f);
      return;
    }
  static const char *const cases[] = { "sign-only", "record-only", "short-record",
                                        "identity-signs" };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_setenv ("E2EE_V2_MISUSE", cases[i], TRUE);
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_failed ();
      g_test_trap_assert_stderr ("*CRITICAL*e2ee_key_with_v2*");
    }
  g_unsetenv ("E2EE_V2_MISUSE");
}

static void
expect_v2 (const V2Fixture *f, const char *v, const char *sig, const char *pk, gint code)
{
  g_autofree char *tail = v2_tail (v, sig, pk);
  g_autofree char *json = v2_jwk (f, tail);

  expect_code (json, -1, E2EE_KEY_EXPECT_PUBLIC, code);
}

/* b64 of the record with byte @at set to @value, cut or grown to @len. */
static char *
record_variant (const V2Fixture *f, gssize at, guint8 value, gsize len)
{
  gsize n;
  const guint8 *rec = g_bytes_get_data (f->record, &n);
  g_autofree guint8 *buf = g_malloc0 (MAX (len, n));
  g_autofree char *b64 = NULL;

  memcpy (buf, rec, n);
  if (at >= 0)
    buf[at] = value;
  b64 = e2ee_b64url_encode (buf, len);
  return quoted (b64);
}

static char *
sign_variant (const V2Fixture *f, gssize at, guint8 value, gsize len)
{
  guint8 xy[65] = { 0 };
  g_autofree char *b64 = NULL;

  memcpy (xy, e2ee_key_get_x (f->sign_pub), 32);
  memcpy (xy + 32, e2ee_key_get_y (f->sign_pub), 32);
  if (at >= 0)
    xy[at] = value;
  b64 = e2ee_b64url_encode (xy, len);
  return quoted (b64);
}

static void
test_v2_reject (void)
{
  V2Fixture f;
  g_autofree char *sig = NULL, *pk = NULL;
  const gint B = E2EE_ERROR_V2_BUNDLE;

  v2_fixture_load (&f);
  sig = quoted (f.sig);
  pk = quoted (f.pk);
  expect_v2 (&f, "[1,2]", sig, pk, 0);
  expect_v2 (&f, "[2,1]", sig, pk, 0);
  expect_v2 (&f, "[1,2,7]", sig, pk, 0);
  /* Both or neither. */
  expect_v2 (&f, "[1,2]", sig, NULL, B);
  expect_v2 (&f, "[1,2]", NULL, pk, B);
  expect_v2 (&f, "[1,2]", NULL, NULL, 0);
  /* 2 must be listed. */
  expect_v2 (&f, "[1]", sig, pk, B);
  expect_v2 (&f, NULL, sig, pk, B);
  expect_v2 (&f, "[1,3,4]", sig, pk, B);
  /* Strings of canonical unpadded base64url. */
  {
    g_autofree char *padded = g_strdup_printf ("\"%s==\"", f.sig);
    g_autofree char *std = g_strdup (sig);
    g_autofree char *pk_padded = g_strdup_printf ("\"%s=\"", f.pk);
    g_autofree char *pk_space = g_strdup_printf ("\"%.20s %s\"", f.pk, f.pk + 20);
    g_autofree char *trailing_bits = NULL;
    char *c;

    for (c = std; *c; c++)
      if (*c == '-' || *c == '_')
        *c = *c == '-' ? '+' : '/';
    expect_v2 (&f, "[1,2]", padded, pk, B);
    if (strcmp (std, sig) != 0)
      expect_v2 (&f, "[1,2]", std, pk, B);
    expect_v2 (&f, "[1,2]", sig, pk_padded, B);
    expect_v2 (&f, "[1,2]", sig, pk_space, B);
    expect_v2 (&f, "[1,2]", "1", pk, B);
    expect_v2 (&f, "[1,2]", sig, "null", B);
    expect_v2 (&f, "[1,2]", sig, "[]", B);
    expect_v2 (&f, "[1,2]", "\"\"", pk, B);
    expect_v2 (&f, "[1,2]", sig, "\"\"", B);
    /* 64 bytes end in 2 spare bits of the last character: not zero. */
    trailing_bits = g_strdup (sig);
    c = trailing_bits + strlen (trailing_bits) - 2;
    *c = *c == 'A' ? 'B' : (*c == 'Q' ? 'R' : (*c == 'g' ? 'h' : (*c == 'w' ? 'x' : *c + 1)));
    expect_v2 (&f, "[1,2]", trailing_bits, pk, B);
  }
  /* The signing point: length, range, curve, infinity, not the identity. */
  {
    g_autofree char *s63 = sign_variant (&f, -1, 0, 63);
    g_autofree char *s65 = sign_variant (&f, -1, 0, 65);
    g_autofree char *off = sign_variant (&f, 63, e2ee_key_get_y (f.sign_pub)[31] ^ 1, 64);
    g_autofree char *zero = NULL;
    g_autofree char *same = NULL;
    g_autofree char *above_p = NULL;
    guint8 z[64] = { 0 }, xy[64];
    g_autofree char *zb = e2ee_b64url_encode (z, 64);
    gsize p_len;
    g_autofree guint8 *p = e2ee_test_unhex (P256_P, &p_len);
    g_autofree char *pb = NULL;

    zero = quoted (zb);
    memcpy (xy, e2ee_key_get_x (f.identity), 32);
    memcpy (xy + 32, e2ee_key_get_y (f.identity), 32);
    {
      g_autofree char *b = e2ee_b64url_encode (xy, 64);
      same = quoted (b);
    }
    memcpy (xy, p, 32);
    memcpy (xy + 32, e2ee_key_get_y (f.sign_pub), 32);
    pb = e2ee_b64url_encode (xy, 64);
    above_p = quoted (pb);
    expect_v2 (&f, "[1,2]", s63, pk, B);
    expect_v2 (&f, "[1,2]", s65, pk, B);
    expect_v2 (&f, "[1,2]", off, pk, B);
    expect_v2 (&f, "[1,2]", zero, pk, B);
    expect_v2 (&f, "[1,2]", same, pk, B);
    expect_v2 (&f, "[1,2]", above_p, pk, B);
  }
  /* The record: 194..201 bytes, label, format 1.  Contents otherwise are
   * the verifier's (these records do not verify, but parse here). */
  {
    static const struct { gsize len; gint code; } lens[] = {
      { 0, E2EE_ERROR_V2_BUNDLE }, { 14, E2EE_ERROR_V2_BUNDLE }, { 193, E2EE_ERROR_V2_BUNDLE },
      { 194, 0 }, { 195, 0 }, { 201, 0 }, { 202, E2EE_ERROR_V2_BUNDLE },
      { 400, E2EE_ERROR_V2_BUNDLE },
    };
    for (gsize i = 0; i < G_N_ELEMENTS (lens); i++)
      {
        g_autofree char *r = record_variant (&f, -1, 0, lens[i].len);
        g_test_message ("record of %" G_GSIZE_FORMAT " bytes", lens[i].len);
        expect_v2 (&f, "[1,2]", sig, r, lens[i].code);
      }
    g_autofree char *label = record_variant (&f, 0, 'p', 195);
    g_autofree char *label_end = record_variant (&f, 13, 'Y', 195);
    g_autofree char *fmt0 = record_variant (&f, 14, 0, 195);
    g_autofree char *fmt2 = record_variant (&f, 14, 2, 195);
    expect_v2 (&f, "[1,2]", sig, label, B);
    expect_v2 (&f, "[1,2]", sig, label_end, B);
    expect_v2 (&f, "[1,2]", sig, fmt0, B);
    expect_v2 (&f, "[1,2]", sig, fmt2, B);
  }
  /* Repeated members are JSON errors as for any other member. */
  {
    g_autofree char *tail = g_strdup_printf (",\"e2ee_v\":[1,2],\"e2ee_sig\":%s,\"e2ee_pk\":%s,"
                                             "\"e2ee_sig\":%s", sig, pk, sig);
    g_autofree char *json = v2_jwk (&f, tail);
    expect_code (json, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_SYNTAX);
  }
  /* Identity-key errors still come first with their own codes. */
  {
    g_autofree char *tail = v2_tail ("[1,2]", sig, pk);
    g_autofree char *json = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                                             f.iy, f.ix, tail);
    expect_code (json, -1, E2EE_KEY_EXPECT_PUBLIC, E2EE_ERROR_JWK_NOT_ON_CURVE);
  }
  /* A private JWK may carry them too. */
  {
    g_autoptr (JsonNode) root = e2ee_test_load_json ("vectors/v2-prekey.json");
    const char *ij = json_object_get_string_member (json_node_get_object (root), "identity_jwk");
    g_autofree char *tail = v2_tail ("[1,2]", sig, pk);
    g_autofree char *json = g_strdup_printf ("%.*s%s}", (int) strlen (ij) - 1, ij, tail);
    g_autofree char *bad_tail = v2_tail ("[1]", sig, pk);
    g_autofree char *bad = g_strdup_printf ("%.*s%s}", (int) strlen (ij) - 1, ij, bad_tail);
    expect_code (json, -1, E2EE_KEY_EXPECT_PRIVATE, 0);
    expect_code (bad, -1, E2EE_KEY_EXPECT_PRIVATE, B);
  }
  v2_fixture_clear (&f);
}

/* v1 inputs are read and written exactly as before. */
static void
test_v2_v1_unchanged (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *in = g_strdup_printf ("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                                         "\"kid\":\"%s\",\"e2ee_v\":[1]}", AX, AY, AKID);
  g_autoptr (E2eeKey) key = e2ee_key_from_jwk (in, -1, E2EE_KEY_EXPECT_PUBLIC, &error);
  g_autofree char *out = NULL;
  g_autofree char *set = NULL;
  g_autofree char *set_out = NULL;
  g_autoptr (GPtrArray) keys = NULL;

  g_assert_no_error (error);
  g_assert_null (e2ee_key_get_sign_pub (key));
  g_assert_null (e2ee_key_get_prekey_record (key));
  g_assert_cmpuint (e2ee_key_get_caps (key), ==, E2EE_CAPS_V1);
  out = e2ee_key_to_jwk (key, FALSE, TRUE);
  g_assert_cmpstr (out, ==, in);
  set = g_strdup_printf ("{\"keys\":[%s]}", in);
  keys = e2ee_keyset_parse (set, -1, &error);
  g_assert_no_error (error);
  g_assert_null (e2ee_key_get_sign_pub (keys->pdata[0]));
  set_out = e2ee_keyset_to_json (keys);
  g_assert_cmpstr (set_out, ==, set);
  /* A v2-capable key without attachments: e2ee_v [1,2] and nothing more. */
  {
    g_autoptr (E2eeKey) v2 = e2ee_key_with_caps (key, E2EE_CAPS_V1 | E2EE_CAPS_V2);
    g_autofree char *t = e2ee_key_to_jwk (v2, FALSE, TRUE);
    g_assert_true (g_str_has_suffix (t, ",\"e2ee_v\":[1,2]}"));
  }
}

/* JWK Sets keep each entry's attachments; the entry limit is unchanged. */
static void
test_v2_keyset (void)
{
  V2Fixture f;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) e2ee_key_unref);
  g_autoptr (GPtrArray) back = NULL;
  g_autofree char *json = NULL;

  v2_fixture_load (&f);
  g_ptr_array_add (keys, e2ee_key_with_v2 (f.identity, f.sign_pub, f.record));
  for (guint i = 1; i < E2EE_KEYSET_MAX; i++)
    {
      g_autoptr (E2eeKey) ik = e2ee_key_generate (&error);
      g_autoptr (E2eeKey) pub = NULL;
      g_autoptr (E2eeKey) v2 = NULL;
      g_autoptr (E2eeSignKey) sk = e2ee_sign_key_generate (&error);
      g_autoptr (E2eeEcSecret) secret = NULL;
      g_autoptr (GBytes) rec = NULL;

      g_assert_no_error (error);
      g_assert_true (e2ee_prekey_create (sk, ik, i, i, 1800000000, 0x03, &secret, &rec, &error));
      pub = e2ee_key_public_copy (ik);
      /* Every third key without attachments: sets may mix them. */
      v2 = e2ee_key_with_caps (pub, E2EE_CAPS_V1 | E2EE_CAPS_V2);
      g_ptr_array_add (keys, i % 3 == 0 ? e2ee_key_ref (v2)
                                        : e2ee_key_with_v2 (v2, e2ee_sign_key_get_public (sk), rec));
    }
  json = e2ee_keyset_to_json (keys);
  back = e2ee_keyset_parse (json, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->len, ==, E2EE_KEYSET_MAX);
  assert_attachments (back->pdata[0], &f);
  for (guint i = 0; i < keys->len; i++)
    {
      const E2eeKey *a = keys->pdata[i], *b = back->pdata[i];
      g_assert_true (e2ee_key_equal (a, b));
      g_assert_cmpuint (e2ee_key_get_caps (a), ==, e2ee_key_get_caps (b));
      g_assert_true ((e2ee_key_get_sign_pub (a) == NULL) == (e2ee_key_get_sign_pub (b) == NULL));
      if (e2ee_key_get_sign_pub (a))
        {
          g_assert_true (e2ee_key_equal (e2ee_key_get_sign_pub (a), e2ee_key_get_sign_pub (b)));
          g_assert_true (g_bytes_equal (e2ee_key_get_prekey_record (a),
                                        e2ee_key_get_prekey_record (b)));
        }
    }
  g_test_message ("JWK Set of 16 keys, 11 with v2 data: %" G_GSIZE_FORMAT " bytes", strlen (json));
  /* An entry's bad attachment refuses the set with its own code. */
  {
    g_autofree char *tail = v2_tail ("[1,2]", "\"AAAA\"", "\"AAAA\"");
    g_autofree char *entry = NULL;
    g_autofree char *set = NULL;
    g_autofree char *body = v2_jwk (&f, tail);

    entry = g_strdup_printf ("%.*s,\"kid\":\"%s\"}", (int) strlen (body) - 1, body,
                             e2ee_key_get_kid (f.identity));
    set = g_strdup_printf ("{\"keys\":[%s]}", entry);
    expect_set (set, E2EE_ERROR_V2_BUNDLE, 0);
  }
  v2_fixture_clear (&f);
}

int
main (int argc, char **argv)
{
  e2ee_test_init (&argc, &argv);
  g_test_add_func ("/jwk/valid", test_valid);
  g_test_add_func ("/jwk/syntax", test_syntax);
  g_test_add_func ("/jwk/non-string-members", test_non_string_members);
  g_test_add_func ("/jwk/missing", test_missing);
  g_test_add_func ("/jwk/kty-crv", test_kty_crv);
  g_test_add_func ("/jwk/base64", test_base64);
  g_test_add_func ("/jwk/length", test_length);
  g_test_add_func ("/jwk/range", test_range);
  g_test_add_func ("/jwk/curve-checks", test_curve_checks);
  g_test_add_func ("/jwk/invalid-curve", test_invalid_curve);
  g_test_add_func ("/jwk/private-rules", test_private_rules);
  g_test_add_func ("/jwk/kid", test_kid);
  g_test_add_func ("/jwk/thumbprint", test_thumbprint);
  g_test_add_func ("/jwk/roundtrip", test_roundtrip);
  g_test_add_func ("/jwk/no-freed-d", test_no_freed_d);
  g_test_add_func ("/jwk/ecdh", test_ecdh);
  g_test_add_func ("/jwk/ecdh-known", test_ecdh_known);
  g_test_add_func ("/jwk/keyset", test_keyset);
  g_test_add_func ("/jwk/v2/export", test_v2_export);
  g_test_add_func ("/jwk/v2/copies", test_v2_copies);
  g_test_add_func ("/jwk/v2/with-v2-misuse", test_v2_with_v2_misuse);
  g_test_add_func ("/jwk/v2/reject", test_v2_reject);
  g_test_add_func ("/jwk/v2/v1-unchanged", test_v2_v1_unchanged);
  g_test_add_func ("/jwk/v2/keyset", test_v2_keyset);
  return g_test_run ();
}
