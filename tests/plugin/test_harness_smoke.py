#!/usr/bin/env python3
"""Smoke test of the plugin test harness, without the plugin.

Proves that the clients, servers and observation points (events, server log,
wire tap, debug log) work, so that plugin tests built on them mean something.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TEXT_AB = "Grüße aus Zürich, ça va? ✓ 日本語 — plain text"
TEXT_BA = "Reply from bob: ¡hola! ünïcödé 🙂"


class XmppSmoke(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=("alice", "bob"))
        self.alice = self.h.xmpp_client("alice", tap=True, wait=False)
        self.bob = self.h.xmpp_client("bob", wait=False)
        self.h.wait_started(self.alice, self.bob)

    def test_message_both_ways(self):
        alice, bob = self.alice, self.bob
        m = bob.mark()
        ack = alice.send(bob.jid, TEXT_AB)
        self.assertTrue(ack["ok"])
        # the UI path: sending-im-msg (before plugins), echo, sent-im-msg
        alice.wait_event("sending", to=bob.jid, text=TEXT_AB)
        alice.wait_message(TEXT_AB, flag="SEND")
        alice.wait_event("sent-raw", to=bob.jid, text=TEXT_AB)

        got = bob.wait_message(TEXT_AB, who=alice.jid, since=m)
        self.assertEqual(got["text"], TEXT_AB)
        self.assertIn("RECV", got["flags"])
        raw = bob.wait_event("received-raw", since=m)
        self.assertEqual(harness.bare(raw["from"]), alice.jid)
        self.assertEqual(raw["text"], TEXT_AB)

        m = alice.mark()
        bob.send(alice.jid, TEXT_BA)
        got = alice.wait_message(TEXT_BA, who=bob.jid, since=m)
        self.assertEqual(got["text"], TEXT_BA)
        # exactly one copy each way
        self.assertEqual(len([e for e in bob.writes(flag="RECV")
                              if e["text"] == TEXT_AB]), 1)
        self.assertEqual(len([e for e in alice.writes(flag="RECV")
                              if e["text"] == TEXT_BA]), 1)

        # the observation points used by plugin tests really see plaintext
        # when there is no plugin
        self.assertIn(TEXT_AB, self.server.log_text())
        self.assertIn(TEXT_AB, alice.tap.to_server.decode("utf-8"))
        self.assertIn(TEXT_BA, alice.tap.to_client.decode("utf-8"))
        self.assertIn(TEXT_AB, alice.debug_log())
        self.assertEqual(alice.errors(), [])
        self.assertEqual(bob.errors(), [])

    def test_raw_bypasses_send_signals(self):
        alice, bob = self.alice, self.bob
        a0, b0 = alice.mark(), bob.mark()
        alice.raw(bob.jid, "raw wire text 42")
        bob.wait_message("raw wire text 42", who=alice.jid, since=b0)
        alice.ping()
        names = [e["event"] for e in alice.find(since=a0)]
        self.assertNotIn("sending", names)
        self.assertNotIn("sent-raw", names)

    def test_status_message_reaches_buddy(self):
        alice, bob = self.alice, self.bob
        bob.wait_buddy_online(alice.jid)
        m = bob.mark()
        alice.set_status("off to lunch, back at 2")
        ev = bob.wait_buddy_status(alice.jid, "off to lunch, back at 2",
                                   since=m)
        self.assertTrue(ev["online"])
        st = bob.get_status(alice.jid)
        self.assertEqual(st["message"], "off to lunch, back at 2")

    def test_get_info_and_commands(self):
        alice, bob = self.alice, self.bob
        info = bob.get_info(alice.jid)
        self.assertEqual(harness.bare(info["who"]), alice.jid)
        self.assertIsInstance(info["entries"], list)
        res = alice.cmd(bob.jid, "no-such-command-here x")
        self.assertEqual(res["status"], "not-found")
        bad = alice.command("send", check=False, to=bob.jid)
        self.assertFalse(bad["ok"])

    def test_restart_keeps_account(self):
        bob = self.h.restart(self.bob)
        m = bob.mark()
        self.alice.send(bob.jid, "after restart")
        bob.wait_message("after restart", since=m)
        self.assertTrue(os.path.exists(os.path.join(bob.user_dir,
                                                    "accounts.xml")))


class IrcSmoke(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.ngircd()
        self.alice = self.h.irc_client("alice", tap=True, wait=False)
        self.bob = self.h.irc_client("bob", wait=False)
        self.h.wait_started(self.alice, self.bob)

    def test_message_both_ways(self):
        alice, bob = self.alice, self.bob
        text = "irc hello ünïcödé ✓"
        m = bob.mark()
        alice.send("bob", text)
        got = bob.wait_message(text, who="alice", since=m)
        self.assertIn("RECV", got["flags"])
        self.assertIn(("PRIVMSG bob :" + text).encode("utf-8"),
                      alice.tap.to_server)
        m = alice.mark()
        bob.send("alice", "irc reply")
        alice.wait_message("irc reply", who="bob", since=m)

    def test_command_runs_in_conversation(self):
        alice, bob = self.alice, self.bob
        m = bob.mark()
        res = alice.cmd("bob", "me waves")
        self.assertEqual(res["status"], "ok")
        bob.wait_message(contains="waves", who="alice", since=m)
        self.assertEqual(alice.cmd("bob", "no-such-command-here")["status"],
                         "not-found")


class RealUiSmoke(unittest.TestCase):
    """Finch and Pidgin started from a prepared user dir sign on and show
    (log) an incoming message."""

    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.h.prosody(users=("alice", "bob"))
        self.bob = self.h.xmpp_client("bob")

    def _check(self, session, resource):
        self.bob.wait_buddy_online(self.bob_peer, timeout=15)
        text = "to %s: grüße ✓" % resource
        self.bob.send("alice@localhost/" + resource, text)
        session.wait_log(lambda t: text in t, timeout=10, what=repr(text))

    @unittest.skipUnless(harness.which("finch") and harness.which("tmux"),
                         "finch or tmux not installed")
    def test_finch(self):
        self.bob_peer = "alice@localhost"
        f = self.h.finch("alice")
        self._check(f, "finch")
        self.assertIn("alice", f.screen() + f.debug_log())

    @unittest.skipUnless(harness.which("pidgin") and harness.which("xvfb-run"),
                         "pidgin or xvfb-run not installed")
    def test_pidgin(self):
        self.bob_peer = "alice@localhost"
        g = self.h.pidgin("alice")
        self._check(g, "pidgin")
        self.assertTrue(g.alive())


if __name__ == "__main__":
    harness.main(servers=("prosody", "ngircd"))
