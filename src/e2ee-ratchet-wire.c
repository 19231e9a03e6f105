/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "e2ee-error.h"
#include "e2ee-ratchet-wire.h"

static void
put32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static guint32
get32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static gboolean
bad (GError **error, const char *why)
{
  g_set_error (error, E2EE_ERROR, E2EE_ERROR_V2_FORMAT, "malformed v2 message: %s", why);
  return FALSE;
}

void
e2ee_v2_message_clear (E2eeV2Message *msg)
{
  g_clear_pointer (&msg->dh_key, e2ee_key_unref);
  g_clear_pointer (&msg->initiator, e2ee_key_unref);
  memset (msg, 0, sizeof *msg);
}

gboolean
e2ee_v2_message_parse (const guint8 *data, gsize len, E2eeV2Message *msg, GError **error)
{
  gsize off = E2EE_V2_FIXED_LEN;

  memset (msg, 0, sizeof *msg);
  if (len < E2EE_V2_FIXED_LEN + E2EE_AEAD_IV_LEN + E2EE_AEAD_TAG_LEN)
    return bad (error, "too short");
  if (data[0] != E2EE_V2_VERSION)
    return bad (error, "not version 2");
  if (data[1] != E2EE_V2_TYPE_MESSAGE && data[1] != E2EE_V2_TYPE_START)
    return bad (error, "unknown type");
  if (data[2] != 0)
    return bad (error, "reserved flag bits set");
  msg->type = data[1];
  msg->sender_device = get32 (data + 3);
  msg->recipient_device = get32 (data + 7);
  memcpy (msg->dh, data + 11, E2EE_EC_POINT_LEN);
  msg->pn = get32 (data + 76);
  msg->n = get32 (data + 80);
  if (msg->type == E2EE_V2_TYPE_START)
    {
      if (len < E2EE_V2_FIXED_LEN + E2EE_V2_START_LEN + E2EE_AEAD_IV_LEN + E2EE_AEAD_TAG_LEN)
        return bad (error, "too short for a session start");
      msg->mode = data[off];
      memcpy (msg->initiator_raw, data + off + 1, E2EE_EC_POINT_LEN);
      msg->spk_id = get32 (data + off + 1 + E2EE_EC_POINT_LEN);
      msg->versions = data[off + 1 + E2EE_EC_POINT_LEN + 4];
      off += E2EE_V2_START_LEN;
      if (msg->mode != 1 && msg->mode != 2)
        return bad (error, "unknown session start mode");
      if (msg->mode == 2 && msg->spk_id != 0)
        return bad (error, "a start without prekey names a prekey");
      if (!(msg->versions & 0x02))
        return bad (error, "the sender's versions lack 2");
    }
  msg->header = data;
  msg->iv = data + off;
  off += E2EE_AEAD_IV_LEN;
  msg->header_len = off;
  msg->ciphertext = data + off;
  msg->ciphertext_len = len - off - E2EE_AEAD_TAG_LEN;
  msg->tag = data + len - E2EE_AEAD_TAG_LEN;
  if (msg->ciphertext_len > E2EE_V2_MAX_PLAINTEXT)
    {
      memset (msg, 0, sizeof *msg);
      return bad (error, "larger than the message size limit");
    }
  if (!(msg->dh_key = e2ee_ec_point_decode (msg->dh, NULL))
      || (msg->type == E2EE_V2_TYPE_START
          && !(msg->initiator = e2ee_ec_point_decode (msg->initiator_raw, NULL))))
    {
      e2ee_v2_message_clear (msg);
      return bad (error, "a key is not a valid P-256 point");
    }
  return TRUE;
}

gsize
e2ee_v2_header_write (guint8 *out, guint32 sender_device, guint32 recipient_device,
                      const guint8 dh[E2EE_EC_POINT_LEN], guint32 pn, guint32 n,
                      const E2eeV2StartPrefix *start)
{
  gsize off = E2EE_V2_FIXED_LEN;

  out[0] = E2EE_V2_VERSION;
  out[1] = start ? E2EE_V2_TYPE_START : E2EE_V2_TYPE_MESSAGE;
  out[2] = 0;
  put32 (out + 3, sender_device);
  put32 (out + 7, recipient_device);
  memcpy (out + 11, dh, E2EE_EC_POINT_LEN);
  put32 (out + 76, pn);
  put32 (out + 80, n);
  if (start)
    {
      out[off] = start->mode;
      memcpy (out + off + 1, start->initiator, E2EE_EC_POINT_LEN);
      put32 (out + off + 1 + E2EE_EC_POINT_LEN, start->spk_id);
      out[off + 1 + E2EE_EC_POINT_LEN + 4] = start->versions;
      off += E2EE_V2_START_LEN;
    }
  return off;
}
