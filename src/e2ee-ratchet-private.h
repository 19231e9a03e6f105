/* purple-e2ee — the ratchet state shared by e2ee-ratchet.c and
 * e2ee-ratchet-state.c (serialisation).  Not for other modules.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "e2ee-ratchet.h"

typedef struct {
  guint32 serial;                  /* receiving chain number, from 0 */
  guint8 dh[E2EE_EC_POINT_LEN];
} E2eeRatchetChain;

typedef struct {
  guint32 serial;
  guint32 n;
  guint64 time;
  guint8 mk[32];
} E2eeRatchetSkipped;

#define E2EE_RATCHET_F_INITIATOR 0x01u
#define E2EE_RATCHET_F_WEAK 0x02u       /* mode 2 start */
#define E2EE_RATCHET_F_START 0x04u      /* prefix still sent */
#define E2EE_RATCHET_F_HAVE_CKS 0x08u
#define E2EE_RATCHET_F_HAVE_CKR 0x10u
#define E2EE_RATCHET_F_NEED_DHS 0x20u   /* new ratchet key due at next send */
#define E2EE_RATCHET_F_REPLIED 0x40u    /* initiator: heard from the peer */
#define E2EE_RATCHET_F_ALL 0x7Fu

struct _E2eeRatchet {
  guint8 flags;
  guint8 sid[32];
  guint32 local_device, remote_device;
  guint8 rk[32];
  E2eeEcSecret *dhs;               /* NULL until a responder first sends */
  guint8 cks[32];
  guint32 ns, pn;
  guint8 ckr[32];
  guint32 nr;
  guint32 next_serial;
  guint32 recv_since_send;
  E2eeV2StartPrefix start;         /* valid with F_START */
  E2eeRatchetChain chains[E2EE_RATCHET_MAX_CHAINS]; /* oldest first; last = current */
  guint n_chains;
  E2eeRatchetSkipped *skipped;     /* oldest first */
  guint n_skipped, cap_skipped;
};

E2eeRatchet *e2ee_ratchet_alloc (void);

/* The skipped-key store.  Growing it moves the keys to a new buffer and
 * wipes the old one; removing an entry wipes the slot it vacates, so no
 * copy of a deleted key stays behind in memory. */
void e2ee_ratchet_skipped_add (E2eeRatchet *s, const E2eeRatchetSkipped *items, guint n);
void e2ee_ratchet_skipped_remove (E2eeRatchet *s, guint i);
void e2ee_ratchet_skipped_clear (E2eeRatchet *s);
