/* purple-e2ee — error domain shared by every core module.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define E2EE_ERROR (e2ee_error_quark ())
GQuark e2ee_error_quark (void);

/* Every failure the core reports carries one of these codes, so that
 * callers and tests can tell them apart without parsing messages. */
typedef enum {
  E2EE_ERROR_FAILED = 1,          /* internal failure (libgcrypt, I/O) */
  E2EE_ERROR_CRYPTO,              /* a libgcrypt call failed unexpectedly */

  /* JWK / key import */
  E2EE_ERROR_JWK_SYNTAX = 10,     /* not a JSON object, duplicated or non-string member */
  E2EE_ERROR_JWK_MISSING,         /* a required member is absent */
  E2EE_ERROR_JWK_KTY,             /* kty is not "EC" */
  E2EE_ERROR_JWK_CRV,             /* crv is not "P-256" */
  E2EE_ERROR_JWK_BASE64,          /* a member is not unpadded base64url */
  E2EE_ERROR_JWK_LENGTH,          /* coordinate or scalar is not 32 bytes */
  E2EE_ERROR_JWK_RANGE,           /* coordinate >= p, or scalar not in [1, n-1] */
  E2EE_ERROR_JWK_NOT_ON_CURVE,    /* (x, y) is not a point of P-256 */
  E2EE_ERROR_JWK_INFINITY,        /* the point at infinity (or all-zero encoding) */
  E2EE_ERROR_JWK_UNEXPECTED_PRIVATE, /* "d" present where a public key is expected */
  E2EE_ERROR_JWK_KEY_MISMATCH,    /* "d" does not match (x, y) */
  E2EE_ERROR_JWK_SET,             /* malformed JWK Set (no keys array, bad kid, dup) */

  /* AEAD / derivation */
  E2EE_ERROR_AEAD_TAG = 30,       /* authentication failed: tampered or wrong key */
  E2EE_ERROR_AEAD_PARAM,          /* wrong IV or tag length */
  E2EE_ERROR_KDF_PARAM,           /* HKDF output length out of range */

  /* Envelope / armor */
  E2EE_ERROR_ARMOR = 40,          /* not an armored envelope, or bad base64url */
  E2EE_ERROR_ENVELOPE_TRUNCATED,  /* shorter than its header says */
  E2EE_ERROR_ENVELOPE_VERSION,    /* unknown protocol version */
  E2EE_ERROR_ENVELOPE_FLAGS,      /* reserved flag bits set, or caps lacks v1 */
  E2EE_ERROR_ENVELOPE_RECIPIENTS, /* recipient count zero or above the limit */
  E2EE_ERROR_ENVELOPE_TOO_LARGE,  /* above the message size limit */
  E2EE_ERROR_ENVELOPE_TRAILING,   /* padding malformed */
  E2EE_ERROR_NOT_FOR_US,          /* addressed to other devices only */
  E2EE_ERROR_UNKNOWN_SENDER,      /* sender device id matches no known key */
  E2EE_ERROR_REPLAY,              /* counter already seen or too old */
  E2EE_ERROR_DOWNGRADE,           /* capabilities show a downgrade */

  /* Fragments */
  E2EE_ERROR_FRAGMENT = 60,       /* malformed fragment */
  E2EE_ERROR_FRAGMENT_LIMIT,      /* too many fragments / pending buffers */
  E2EE_ERROR_FRAGMENT_BUDGET,     /* budget too small to make progress */

  /* Offers */
  E2EE_ERROR_OFFER = 70,          /* malformed profile block / status tag / offer */

  /* Keyring */
  E2EE_ERROR_KEYRING_IO = 80,     /* cannot read or write the file */
  E2EE_ERROR_KEYRING_CORRUPT,     /* the file does not parse; it is left untouched */
  E2EE_ERROR_KEYRING_VERSION,     /* written by a newer format version */
  E2EE_ERROR_KEYRING_PERMISSIONS, /* the file is readable by others */
  E2EE_ERROR_KEYRING_PASSPHRASE,  /* wrong passphrase */
  E2EE_ERROR_KEYRING_LOCKED,      /* another process holds the lock */
  E2EE_ERROR_KEYRING_LIMIT,       /* above the size limit */
  E2EE_ERROR_KEYRING_NOT_EMPTY,   /* a backup is imported only into a keyring without accounts */

  /* Session / trust */
  E2EE_ERROR_NO_KEY = 100,        /* no key known for the buddy */
  E2EE_ERROR_UNTRUSTED,           /* key changed or new device needs a decision */
  E2EE_ERROR_POLICY,              /* encryption disabled for this buddy */
  E2EE_ERROR_KEY_ELSEWHERE,       /* key already pinned under another name, or our own key */
  E2EE_ERROR_REJECTED,            /* message from a device the user rejected: dropped */
  E2EE_ERROR_WITHHELD,            /* message from a device not accepted yet: withheld */
  E2EE_ERROR_NAME,                /* buddy or account name empty, not UTF-8, control bytes, too long */
  E2EE_ERROR_IDENTITY_UNSAVED,    /* a new identity key could not be saved: not used */

  /* Protocol v2 (docs/PROTOCOL.md §12): signing keys, prekeys, session
   * start, ratchet messages and state blobs */
  E2EE_ERROR_SIGNATURE = 140,     /* ECDSA signature malformed or does not verify */
  E2EE_ERROR_SIGN_KEY,            /* signing JWK not for ES256 ("alg"/"use") */
  E2EE_ERROR_PREKEY_FORMAT,       /* prekey record malformed */
  E2EE_ERROR_PREKEY_IDENTITY,     /* prekey record for another identity or device */
  E2EE_ERROR_PREKEY_EXPIRED,      /* prekey expired, or its expiry is beyond the allowed lifetime */
  E2EE_ERROR_PREKEY_VERSION,      /* prekey version list malformed or without v2 */
  E2EE_ERROR_V2_FORMAT,           /* v2 message malformed (length, type, reserved bits, point) */
  E2EE_ERROR_V2_DEVICE,           /* v2 message for another device or session */
  E2EE_ERROR_V2_SKIP_LIMIT,       /* message number beyond the skip bound: state unchanged */
  E2EE_ERROR_V2_DUPLICATE,        /* message already received: drop silently */
  E2EE_ERROR_V2_STATE,            /* session state blob malformed, or counters exhausted */
  E2EE_ERROR_V2_START,            /* session start inconsistent (unknown prekey id, not a start) */
  E2EE_ERROR_V2_ACCOUNT,          /* account identifier empty, not UTF-8 or too long */

  /* Envelope counters (PROTOCOL.md §7) */
  E2EE_ERROR_CLOCK,               /* the system clock is beyond the 40-bit counter range:
                                     nothing sent, nothing recorded */

  /* Trust decisions */
  E2EE_ERROR_AMBIGUOUS,           /* several devices match (a prefix, or a bare /e2ee trust
                                     with more than one undecided): name one; nothing changed */
  E2EE_ERROR_DEVICE_LIMIT,        /* a buddy's device cap is full of decided devices or ones
                                     that sent messages: the new key was not recorded */

  /* Protocol v2 in use (PROTOCOL.md §5, §8) */
  E2EE_ERROR_V2_ENVELOPE,         /* v2 envelope malformed (layout, recipient count, body
                                     hash), or a text too large for it */
  E2EE_ERROR_V2_BUNDLE,           /* published v2 data (signing key, prekey record) malformed */
  E2EE_ERROR_V2_NO_PREKEY,        /* the device has shown a prekey before and none valid is
                                     known now: no weaker start (downgrade), nothing sent */
  E2EE_ERROR_V2_NO_SESSION,       /* a v2 message from a known device opens in no session */
  E2EE_ERROR_V1_RETIRED,          /* a v1 envelope: static-static messages are no longer read */
} E2eeErrorCode;

G_END_DECLS
