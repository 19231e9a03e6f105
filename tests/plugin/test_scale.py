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
import relay  # noqa: E402

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

    def wait_all(self, client, want, pred, what, timeout, since=0):
        """Until pred(event) has named every item of `want` (pred returns
        the item an event stands for, or None), over events from `since`."""
        deadline = time.monotonic() + timeout
        seen = set()
        i = since
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

    def run_scale(self, n, otr=False, wide=0):
        """n buddies in processes of PER_PROCESS accounts; then `wide`
        more buddies (bare clients) that each publish 16 device keys, so
        each of Alice's envelopes to them has 16 recipients while hundreds
        of per-peer cipher handles are live."""
        t0 = time.monotonic()
        buddies = ["b%03d" % i for i in range(1, n + 1)]
        wides = ["w%02d" % i for i in range(1, wide + 1)]
        p = harness.Prosody(self.h.dir)
        p.register_many(["alice"] + buddies + wides)
        p.befriend_many("alice", buddies + wides)
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
        # Buddies with 16 devices each (public test points: nobody reads
        # these envelopes; what counts is that Alice seals them).
        raws = []
        self.addCleanup(lambda: [r.close() for r in raws])
        keys = relay.many_public_keys(16 * wide, start=1000)
        for i, w in enumerate(wides):
            r = relay.XmppRaw(p.port, w)
            raws.append(r)
            r.presence(status="[e2ee:%s]" % relay.compact_set(keys[16 * i:16 * i + 16]))
        if wides:
            deadline = time.monotonic() + 60
            for w in wides:
                while True:
                    ack = alice.command("get-status", to=p.jid(w))
                    st = alice.wait_event("status", since=ack["_since"],
                                          seq=ack["seq"])
                    if STATUS_TAG in (st.get("message") or ""):
                        break
                    if time.monotonic() > deadline:
                        raise harness.HarnessError("no key set of %s: %s" % (w, st))
                    time.sleep(0.3)
            alice.ping()
            time.sleep(1.0)
        mark = alice.mark()
        for w in wides:
            alice.send(p.jid(w), "to %s with many devices" % w)
        wide_env = {}
        if wides:
            def sealed(e):
                if e.get("event") == "sent-raw" and \
                        (e.get("text") or "").startswith("?E2E:"):
                    wide_env[harness.bare(e.get("to"))] = e["text"]
                    return harness.bare(e.get("to"))
                return None
            self.wait_all(alice, set(p.jid(w) for w in wides), sealed,
                          "envelopes to 16-device buddies", 60, since=mark)
            counts = sorted(set(len(relay.envelope_recipients(v) or [])
                                for v in wide_env.values()))
            report("%d buddies with 16 devices each: envelopes with %s recipients"
                   % (wide, counts))
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
        self.run_scale(OTR_BUDDIES, otr=True,
                       wide=int(os.environ.get("E2EE_SCALE_WIDE", "12")))


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
