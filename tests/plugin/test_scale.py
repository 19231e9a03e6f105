#!/usr/bin/env python3
"""Many conversations in one process, against a real Prosody.

- One account with E2EE_SCALE_BUDDIES (default 200) buddies, each buddy an
  account in one of several client processes holding 20 accounts each: one
  encrypted message each way with every buddy, so the one-account process
  and every 20-account process run hundreds of live peers at once.
- The same with libotr initialised first in every process (what pidgin-otr
  does when it loads: it installs its own libgcrypt secure-memory handlers).

Every message must arrive decrypted (with the lock marker) and nothing may
report an allocation failure.  The figures (accounts, messages, VmHWM,
time) are written to the test output.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = harness.PLUGIN_ID
LOCK = "\U0001F512"
STATUS_TAG = "[e2ee:"
PER_PROCESS = 20
BUDDIES = int(os.environ.get("E2EE_SCALE_BUDDIES", "200"))
OTR_BUDDIES = int(os.environ.get("E2EE_SCALE_OTR_BUDDIES", str(BUDDIES)))


def report(line):
    sys.stderr.write("scale: " + line + "\n")
    sys.stderr.flush()


class Scale(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)

    def wait_all(self, client, want, pred, what, timeout):
        """Until pred(event) has named every item of `want` (pred returns
        the item an event stands for, or None)."""
        deadline = time.monotonic() + timeout
        seen = set()
        i = 0
        while True:
            evs = client.events[i:]
            i += len(evs)
            for e in evs:
                k = pred(e)
                if k is not None:
                    seen.add(k)
            if want <= seen:
                return seen
            if time.monotonic() > deadline or not client.alive():
                missing = sorted(want - seen)
                raise harness.HarnessError(
                    "%s: %s: %d of %d, missing e.g. %s\n%s" % (
                        client.name, what, len(want & seen), len(want),
                        missing[:5], client.describe()))
            time.sleep(0.2)

    def run_scale(self, n, otr=False):
        t0 = time.monotonic()
        buddies = ["b%03d" % i for i in range(1, n + 1)]
        p = harness.Prosody(self.h.dir)
        p.register_many(["alice"] + buddies)
        p.befriend_many("alice", buddies)
        p.start()
        self.h._servers.append(p)
        self.h._prosody = p
        extra = ["--otr-init"] if otr else []
        alice = harness.Client("alice", "prpl-jabber", p.jid("alice", "test"),
                               harness.DEFAULT_PASSWORD, p.port, self.h.dir,
                               plugins=[P], extra_args=extra)
        alice.jid = p.jid("alice")
        self.h._clients.append(alice)
        self.h.wait_started(alice, timeout=30)
        if otr:
            alice.wait_event("otr", timeout=5)
        groups = [buddies[i:i + PER_PROCESS] for i in range(0, n, PER_PROCESS)]
        procs = []
        for k, g in enumerate(groups):
            procs.append(self.h.xmpp_multi(g, plugins=[P], name="group%02d" % k,
                                           extra_args=extra, wait=False))
        for c in procs:
            self.h.wait_multi(c, timeout=60 + 2 * len(c.accounts))
        t_signon = time.monotonic() - t0
        want = set(p.jid(b) for b in buddies)

        # Keys come with presence: Alice learns every buddy's, each buddy
        # Alice's.
        def tagged(e):
            if e.get("event") == "buddy-status" and \
                    STATUS_TAG in (e.get("message") or ""):
                return harness.bare(e.get("who"))
            return None
        self.wait_all(alice, want, tagged, "buddy keys", 60 + n)
        deadline = time.monotonic() + 60
        for c in procs:
            for a in c.accounts:
                while True:
                    ack = c.command("get-status", to=alice.jid, account=a)
                    st = c.wait_event("status", since=ack["_since"],
                                      seq=ack["seq"])
                    if STATUS_TAG in (st.get("message") or ""):
                        break
                    if time.monotonic() > deadline:
                        raise harness.HarnessError(
                            "%s: %s never saw alice's key: %s" % (c.name, a, st))
                    time.sleep(0.3)
        alice.ping()
        time.sleep(1.0)

        # Alice -> every buddy.
        for b in buddies:
            alice.send(p.jid(b), "to %s from alice" % b)
        got = 0
        for c in procs:
            def recv(e, c=c):
                if e.get("event") == "write" and "RECV" in e.get("flags", ()) \
                        and harness.bare(e.get("who")) == alice.jid \
                        and LOCK in (e.get("text") or "") \
                        and ("to %s from alice" % harness.bare(
                            e.get("account")).split("@")[0]) in e["text"]:
                    return harness.bare(e.get("account"))
                return None
            got += len(self.wait_all(c, set(harness.bare(a) for a in c.accounts),
                                     recv, "messages from alice", 60 + n))
        sent_env = [e for e in alice.find(event="sent-raw")
                    if (e.get("text") or "").startswith("?E2E:")]
        self.assertEqual(len(sent_env), n, "not every message left encrypted")

        # Every buddy -> Alice.
        for c in procs:
            for a in c.accounts:
                c.send(alice.jid, "to alice from %s" % harness.bare(a).split("@")[0],
                       account=a)

        def from_buddy(e):
            if e.get("event") == "write" and "RECV" in e.get("flags", ()) \
                    and LOCK in (e.get("text") or "") \
                    and ("to alice from %s" % harness.bare(e.get("who")).split("@")[0]) \
                    in e["text"]:
                return harness.bare(e.get("who"))
            return None
        back = len(self.wait_all(alice, want, from_buddy, "messages to alice",
                                 60 + n))
        elapsed = time.monotonic() - t0
        for c in [alice] + procs:
            bad = [e for e in c.find(event="write")
                   if "allocate" in (e.get("text") or "").lower()
                   or "failed" in (e.get("text") or "").lower()]
            self.assertEqual(bad, [], "%s: %s" % (c.name, bad[:3]))
            dbg = c.debug_log()
            self.assertNotIn("Cannot allocate memory", dbg, c.name)
            self.assertTrue(c.alive(), c.name + " died")
            with open(c.stderr_path, errors="replace") as f:
                err = f.read()
            self.assertNotIn("AddressSanitizer", err, c.name)
        hwm_alice = alice.vm_kib("VmHWM")
        hwm_groups = max(c.vm_kib("VmHWM") for c in procs)
        report("%s%d buddies of one account; %d processes of up to %d accounts; "
               "messages alice->buddies %d, buddies->alice %d; VmHWM alice %d kB, "
               "largest group process %d kB; sign-on %.1fs, total %.1fs"
               % ("libotr initialised first; " if otr else "", n, len(procs),
                  PER_PROCESS, got, back, hwm_alice, hwm_groups, t_signon, elapsed))
        self.assertEqual(got, n)
        self.assertEqual(back, n)

    def test_one_account_many_buddies_and_20_accounts_per_process(self):
        self.run_scale(BUDDIES)

    def test_with_libotr_initialised_first(self):
        self.run_scale(OTR_BUDDIES, otr=True)


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
