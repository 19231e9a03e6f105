#!/usr/bin/env python3
"""Decision dialogs, headless: a real libpurple client (e2ee-test-client,
which answers every request itself with the action it was told to pick)
against a real Prosody.  Each dialog must name the device and its safety
number, and the action picked must change the device's trust as /e2ee
status then shows; "decide later" changes nothing."""

import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_e2ee_xmpp import P, T, XmppBase, wait_key, wait_system  # noqa: E402

ACCEPT, REJECT, LATER = 0, 1, 2


def status(client, buddy):
    m = client.mark()
    client.cmd(buddy, "e2ee status")
    return "\n".join(e["text"] for e in client.find(since=m, event="write")
                     if "SYSTEM" in e.get("flags", ()))


def wait_dialog(client, contains, since):
    return client.wait_event(
        "request", since=since, timeout=T, kind="action",
        pred=lambda e: contains in (e.get("primary") or ""))


class Dialogs(XmppBase):
    def check_dialog(self, req, kid, answer):
        self.assertEqual(req["choices"], ["_Accept", "_Reject", "Decide _later"])
        self.assertIn("Device: " + kid, req["secondary"])
        self.assertRegex(req["secondary"], r"Safety number: (\d{5} ){11}\d{5}")
        self.assertEqual(req["answer"], req["choices"][answer])

    def test_key_change_dialog_accepts_the_new_key(self):
        alice, bob = self.pair()
        self.converse(alice, bob, "first key")
        bob.stop()
        shutil.rmtree(os.path.join(bob.user_dir, "purple-e2ee"))
        alice.answer_action(ACCEPT)
        m = alice.mark()
        bob = self.h.restart(bob, plugins=[P], timeout=T)
        line = wait_system(alice, "CHANGED", since=m, conv=bob.jid)
        kid = re.search(r"new device (\S{8}),", line["text"]).group(1)
        req = wait_dialog(alice, "encryption key has CHANGED", m)
        self.check_dialog(req, kid, ACCEPT)
        wait_system(alice, "Accepted device " + kid, since=m)
        st = status(alice, bob.jid)
        self.assertRegex(st, r"device %s: trusted on first use" % re.escape(kid))
        self.assertNotIn("KEY CHANGED", st)
        wait_key(bob, alice.jid)
        self.converse(alice, bob, "after the dialog")
        self.assert_clean(alice, bob)

    def test_new_device_dialog_rejects(self):
        alice, bob = self.pair()
        alice.answer_action(REJECT)
        m = alice.mark()
        bob2 = self.h.xmpp_client("bob", resource="work", name="bob2",
                                  plugins=[P], timeout=T)
        line = wait_system(alice, "NEW DEVICE", since=m, conv=bob.jid)
        kid = re.search(r"device (\S{8}),", line["text"]).group(1)
        req = wait_dialog(alice, "has a NEW DEVICE", m)
        self.check_dialog(req, kid, REJECT)
        wait_system(alice, "Rejected device " + kid, since=m)
        self.assertRegex(status(alice, bob.jid), r"device %s: rejected" % re.escape(kid))
        self.assert_clean(alice, bob, bob2)

    def test_own_device_dialog_decide_later_changes_nothing(self):
        alice, bob = self.pair()
        alice.answer_action("default")
        m = alice.mark()
        evil = self.h.xmpp_client("alice", resource="evil", name="evil",
                                  plugins=[P], timeout=T)
        line = wait_system(alice, "claims to be YOUR account", since=m, conv=bob.jid)
        kid = re.search(r"device (\S{8}),", line["text"]).group(1)
        req = wait_dialog(alice, "claims to be your own account", m)
        self.check_dialog(req, kid, LATER)
        alice.ping()
        self.assertRegex(status(alice, bob.jid),
                         r"Your other device %s: PENDING" % re.escape(kid))
        # Accepting it in a later dialog confirms it as our own device.
        alice.answer_action(ACCEPT)
        self.assertEqual(alice.cmd(bob.jid, "e2ee own accept " + kid)["status"], "ok")
        self.assertRegex(status(alice, bob.jid),
                         r"Your other device %s: accepted as yours" % re.escape(kid))
        self.assert_clean(alice, bob, evil)

    def test_one_dialog_per_buddy_and_the_next_after_a_command(self):
        """Two new devices at once: one dialog (left unanswered, as when
        its window is closed); the command decides that device, and only
        then is the second device's dialog opened."""
        alice, bob = self.pair()
        alice.answer_action("cancel")
        m = alice.mark()
        extra = [self.h.xmpp_client("bob", resource=r, name="bob-" + r,
                                    plugins=[P], wait=False)
                 for r in ("work", "phone")]
        self.h.wait_started(*extra, timeout=T)
        kids = []
        since = m
        for _ in extra:
            line = wait_system(alice, "NEW DEVICE", since=since, conv=bob.jid)
            since = alice.events.index(line) + 1
            kids.append(re.search(r"device (\S{8}),", line["text"]).group(1))
        alice.ping()
        reqs = alice.find(since=m, event="request",
                          pred=lambda e: "NEW DEVICE" in (e.get("primary") or ""))
        self.assertEqual(len(reqs), 1, reqs)
        first = re.search(r"Device: (\S{8})", reqs[0]["secondary"]).group(1)
        other = [k for k in kids if k != first][0]
        n = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust " + first)["status"], "ok")
        req = wait_dialog(alice, "has a NEW DEVICE", n)
        self.assertIn("Device: " + other, req["secondary"])
        self.assertRegex(status(alice, bob.jid),
                         r"device %s: awaiting your decision" % re.escape(other))
        self.assert_clean(alice, bob, *extra)


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
