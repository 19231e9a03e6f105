#!/usr/bin/env python3
"""The plugin on IRC: real libpurple clients against a real ngIRCd.

IRC has no profiles and no usable status text, so keys travel in-band (a key
offer answered by the other plugin), and long envelopes are split into
fragments the receiving plugin puts back together.
"""

import os
import re
import shutil
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_e2ee_xmpp import (MARK_U, MARK_PLAIN, T, is_system,  # noqa: E402
                            recv_texts, tamper, wait_key, wait_system)

P = harness.PLUGIN_ID
SECRET_A = "irc-alpha-secret-2718"
SECRET_B = "irc-bravo-secret-3141"
TEXT_AB = "Grüße <b>fett</b> & ünïcödé ✓ 日本語 " + SECRET_A
TEXT_BA = "¡Hola! <i>schräg</i> 🙂 " + SECRET_B


class LineRelay:
    """A man in the middle for one IRC client: relays 127.0.0.1:port to the
    server line by line, drops client lines a predicate picks, and injects
    lines towards the client (as the server could)."""

    def __init__(self, target_port, drop=None):
        self.drop = drop
        self.dropped = []
        self.to_server = bytearray()
        self._lock = threading.Lock()
        self._down = None
        self._socks = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self.port = self._listener.getsockname()[1]
        self._target = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self._target), timeout=10)
            up.settimeout(None)
            with self._lock:
                self._down = down
                self._socks += [down, up]
            threading.Thread(target=self._pump, args=(down, up, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, False),
                             daemon=True).start()

    def _pump(self, src, dst, to_server):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line += b"\n"
                    with self._lock:
                        if to_server and self.drop is not None and self.drop(line):
                            self.dropped.append(line)
                            continue
                        if to_server:
                            self.to_server.extend(line)
                        dst.sendall(line)
        except OSError:
            pass

    def inject(self, line):
        with self._lock:
            self._down.sendall(line.encode() + b"\r\n")

    def text(self):
        with self._lock:
            return bytes(self.to_server).decode("utf-8", "replace")

    def close(self):
        self._listener.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


def privmsgs(blob, target):
    """PRIVMSG lines to `target` in raw IRC bytes (as text)."""
    text = blob.decode("utf-8", "replace")
    return [l for l in text.split("\r\n")
            if re.match(r"PRIVMSG %s :" % re.escape(target), l)]


class IrcBase(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.ngircd()

    def start(self, nicks=("alice", "bob"), plain=(), tap=()):
        clients = [self.h.irc_client(n, plugins=[] if n in plain else [P],
                                     tap=n in tap, wait=False)
                   for n in nicks]
        self.h.wait_started(*clients, timeout=T)
        return clients

    def pair(self, tap=()):
        alice, bob = self.start(tap=tap)
        # Opening the conversation sends Alice's key offer; Bob's plugin
        # answers it, so both sides know each other's key.
        alice.cmd("bob", "e2ee status")
        wait_key(alice, "bob")
        wait_key(bob, "alice")
        return alice, bob

    def converse(self, alice, bob, text, mark=MARK_U, timeout=T):
        m, a = bob.mark(), alice.mark()
        alice.send(bob.jid, text)
        raw = alice.wait_event("sent-raw", since=a, timeout=timeout)
        self.assertTrue(raw["text"].startswith(("?E2E:", "?E2F:")), raw["text"][:60])
        got = bob.wait_message(mark + text, who=alice.jid, since=m, timeout=timeout)
        return raw["text"], got

    def assert_clean(self, *clients):
        for c in clients:
            self.assertEqual(c.errors(), [], "%s: errors or criticals" % c.name)


class Conversation(IrcBase):
    def test_inband_discovery_and_conversation(self):
        alice, bob = self.pair(tap=("alice",))
        # The offer and answer were handled, not shown.
        for c in (alice, bob):
            shown = [t for t in recv_texts(c) if "?E2K:" in t or "?E2A:" in t]
            self.assertEqual(shown, [], "%s: key exchange shown" % c.name)
        wire = alice.tap.to_server
        self.assertEqual(len([l for l in privmsgs(wire, "bob") if ":?E2K:" in l]), 1)

        self.converse(alice, bob, TEXT_AB)
        alice.wait_message(MARK_U + TEXT_AB, flag="SEND", timeout=T)
        m = alice.mark()
        bob.send("alice", TEXT_BA)
        alice.wait_message(MARK_U + TEXT_BA, who="bob", since=m, timeout=T)

        # What the IRC server relayed holds only envelopes.
        alice.ping()
        both = alice.tap.text()
        self.assertIn("?E2E:", both)
        for token in (SECRET_A, SECRET_B, "fett", "schräg"):
            self.assertNotIn(token, both)
            for c in (alice, bob):
                self.assertNotIn(token, c.debug_log(), "%s debug log" % c.name)
        self.assert_clean(alice, bob)

    def test_first_message_waits_for_the_key(self):
        alice, bob = self.start(tap=("alice",))
        # No conversation yet: the first message itself triggers the offer
        # and waits for the answer instead of leaving in plaintext.
        a, b = alice.mark(), bob.mark()
        first = "very first words " + SECRET_A
        second = "typed right after " + SECRET_B
        alice.send("bob", first)
        alice.send("bob", second)
        wait_system(alice, "waits up to", since=a)
        # Alice is not Bob's contact: her key is not pinned from an offer
        # anyone could send, and her messages wait unread until Bob writes.
        wait_system(bob, "kept unread", since=b, conv="alice")
        self.assertEqual(recv_texts(bob, since=b), [])
        bob.send("alice", "who is there?")
        bob.wait_message(MARK_U + first, who="alice", since=b, timeout=T)
        got = bob.wait_message(MARK_U + second, who="alice", since=b, timeout=T)
        texts = recv_texts(bob, since=b)
        self.assertEqual(texts, [MARK_U + first, MARK_U + second])
        self.assertIn("RECV", got["flags"])
        alice.wait_message(MARK_U + first, flag="SEND", since=a, timeout=T)
        alice.ping()
        self.assertNotIn(SECRET_A, alice.tap.text())
        self.assertNotIn(SECRET_B, alice.tap.text())
        self.assert_clean(alice, bob)

    def test_4k_message_is_fragmented_and_reassembled(self):
        alice, bob = self.pair(tap=("alice",))
        unit = "Fragment ünïcödé ✓ <u>markup</u> 0123456789 "
        text = (unit * (4096 // len(unit.encode()) + 1))
        text = text.encode()[:4096].decode("utf-8", "ignore") + SECRET_A
        self.assertGreaterEqual(len(text.encode()), 4096)
        before = len(privmsgs(alice.tap.to_server, "bob"))
        # libpurple paces IRC output (2 s per line after a burst of 5).
        self.converse(alice, bob, text, timeout=90)
        lines = privmsgs(alice.tap.to_server, "bob")[before:]
        frags = [l for l in lines if ":?E2F:" in l]
        self.assertGreaterEqual(len(frags), 10)
        self.assertEqual(len(frags), len(lines))
        for l in frags:
            self.assertLessEqual(len(l.encode()) + 2, 512)
        self.assertNotIn(SECRET_A, alice.tap.text())
        self.assertEqual(recv_texts(bob).count(MARK_U + text), 1)
        # No fragment was shown on its own.
        self.assertEqual([t for t in recv_texts(bob) if "?E2F:" in t], [])
        self.assert_clean(alice, bob)


class Trust(IrcBase):
    def test_key_change_warns_blocks_and_recovers(self):
        alice, bob = self.pair()
        self.converse(alice, bob, "with the first key")

        bob.stop()
        shutil.rmtree(os.path.join(bob.user_dir, "purple-e2ee"))
        bob = self.h.restart(bob, plugins=[P], timeout=T)

        # Alice still encrypts to the old key; the reinstalled Bob cannot
        # read it, says so, and offers his new key, which Alice's client
        # reports as a key change.
        a, b = alice.mark(), bob.mark()
        alice.send("bob", "to the old key")
        bob.wait_for(since=b, timeout=T, event="write", what="notice",
                     pred=lambda e: is_system(e) and "alice" in e["text"]
                     and ("not shown" in e["text"] or "cannot read" in e["text"]))
        wait_system(alice, "CHANGED", since=a)
        self.assertEqual([t for t in recv_texts(bob, since=b) if "old key" in t], [])

        a = alice.mark()
        alice.send("bob", "blocked " + SECRET_A)
        wait_system(alice, "NOT sent", since=a)
        alice.ping()
        self.assertEqual(alice.find(since=a, event="sent-raw"), [])

        self.assertEqual(alice.cmd("bob", "e2ee trust")["status"], "ok")
        wait_key(bob, "alice")
        self.converse(alice, bob, "after trusting the new key")
        self.assert_clean(alice, bob)

    def test_tampered_replayed_and_downgrade(self):
        alice, bob = self.pair()
        env, _ = self.converse(alice, bob, "original " + SECRET_A)
        # A replay is dropped without a word; the next message comes after it.
        b = bob.mark()
        alice.raw("bob", env)
        self.converse(alice, bob, "next one")
        self.assertEqual([e for e in bob.writes(since=b)
                          if "original" in (e.get("text") or "")
                          or "replay" in (e.get("text") or "")], [])
        b = bob.mark()
        alice.raw("bob", tamper(env))
        wait_system(bob, "altered", since=b)
        bob.ping()
        self.assertEqual([t for t in recv_texts(bob) if "?E2E:" in t], [])
        self.assertEqual(alice.cmd("bob", "e2ee off")["status"], "ok")
        b = bob.mark()
        alice.raw("bob", "plain words")
        bob.wait_message(MARK_PLAIN + "plain words", who="alice", since=b, timeout=T)
        self.assert_clean(alice, bob)

    def test_reset_forgets_and_asks_again(self):
        alice, bob = self.start()
        bob.add_buddy("alice")
        alice.cmd("bob", "e2ee status")
        wait_key(alice, "bob")
        a = alice.mark()
        b = bob.mark()
        self.assertEqual(alice.cmd("bob", "e2ee reset")["status"], "ok")
        wait_system(alice, "Stopped trusting", since=a)
        # The reset sends a new offer; Bob's answer, even with the same key,
        # is not trusted on first use: it waits for /e2ee trust DEVICE.
        bob.wait_for(event="received-raw", since=b, timeout=T,
                     pred=lambda e: "?E2K:" in e["text"])
        s = alice.mark()
        alice.cmd("bob", "e2ee status")
        st = "\n".join(e["text"] for e in alice.find(since=s, event="write")
                       if is_system(e))
        m = re.search(r"device ([A-Za-z0-9_-]{8})[^\n<]*rejected", st)
        self.assertIsNotNone(m, st)
        self.assertNotIn("trusted on first use", st)
        self.assertEqual(alice.cmd("bob", "e2ee trust " + m.group(1))["status"], "ok")
        wait_key(alice, "bob")
        self.converse(alice, bob, "after reset")


class LastStep(IrcBase):
    def test_msg_and_query_commands_cannot_send_plaintext(self):
        alice, bob = self.pair(tap=("alice",))
        self.assertEqual(alice.cmd("bob", "e2ee require")["status"], "ok")
        b = bob.mark()
        # IRC's own commands write the line themselves, past sending-im-msg.
        for line in ("msg bob by msg " + SECRET_A, "query bob by query " + SECRET_B):
            a = alice.mark()
            alice.cmd("bob", line)
            wait_system(alice, "NOT sent", since=a, conv="bob")
        # And with the default policy: Bob's key is known.
        self.assertEqual(alice.cmd("bob", "e2ee on")["status"], "ok")
        a = alice.mark()
        alice.cmd("bob", "msg bob default policy " + SECRET_A)
        wait_system(alice, "NOT sent", since=a, conv="bob")
        self.converse(alice, bob, "still encrypted")
        alice.ping()
        for token in (SECRET_A, SECRET_B):
            self.assertNotIn(token, alice.tap.text())
        self.assertEqual([t for t in recv_texts(bob, since=b)
                          if SECRET_A in t or SECRET_B in t], [])
        self.assert_clean(alice, bob)


class Adversary(IrcBase):
    def relayed_client(self, nick, drop=None):
        """A client whose connection runs through a LineRelay."""
        relay = LineRelay(self.server.port, drop=drop)
        self.addCleanup(relay.close)
        c = harness.Client(nick, "prpl-irc", "%s@%s" % (nick, self.server.server),
                           None, relay.port, self.h.dir, plugins=[P])
        c.tap = None
        c.jid = nick
        self.h._clients.append(c)
        return c, relay

    def test_dropped_offer_is_sent_again(self):
        # The server drops Alice's first key offer to Bob.
        first = []

        def drop(line):
            # The offer's first piece (its key data follows in fragments).
            if b"PRIVMSG bob :" in line and b"?E2K:" in line and not first:
                first.append(line)
                return True
            return False
        alice, relay = self.relayed_client("alice", drop=drop)
        bob = self.h.irc_client("bob", plugins=[P], wait=False)
        self.h.wait_started(alice, bob, timeout=T)
        bob.add_buddy("alice")
        b = bob.mark()
        alice.send("bob", "first words " + SECRET_A)
        # The offer comes again, Bob answers, and the waiting message goes
        # encrypted instead of in plaintext.
        bob.wait_message(MARK_U + "first words " + SECRET_A, who="alice", since=b,
                         timeout=T + 20)
        self.assertEqual(len(relay.dropped), 1)
        self.assertNotIn(SECRET_A, relay.text())
        self.assert_clean(alice, bob)

    def test_forged_nick_change_does_not_continue_in_plaintext(self):
        alice, relay = self.relayed_client("alice")
        bob = self.h.irc_client("bob", plugins=[P], wait=False)
        self.h.wait_started(alice, bob, timeout=T)
        alice.cmd("bob", "e2ee status")
        wait_key(alice, "bob")
        for policy in ("require", "on"):
            self.assertEqual(alice.cmd("bob", "e2ee " + policy)["status"], "ok")
            new = "bob_" if policy == "require" else "bob__"
            old = "bob" if policy == "require" else "bob_"
            a = alice.mark()
            # The server claims Bob took another nick; the window follows it.
            relay.inject(":%s!bob@127.0.0.1 NICK :%s" % (old, new))
            alice.wait_for(since=a, timeout=T, event="write",
                           pred=lambda e: harness.bare(e.get("conv")) == new)
            a = alice.mark()
            alice.send(new, "after the nick change " + SECRET_B)
            wait_system(alice, "NOT sent", since=a, conv=new)
            st = alice.cmd(new, "e2ee status")
            self.assertEqual(st["status"], "ok")
        alice.ping()
        time.sleep(1.5)   # libpurple's IRC queue
        self.assertNotIn(SECRET_B, relay.text())
        self.assert_clean(alice, bob)

    def test_offer_again_on_e2ee_on_and_reconnect(self):
        alice, carol = self.start(nicks=("alice", "carol"), plain=("carol",))

        def offers():
            return len([t for t in recv_texts(carol) if t.startswith("?E2K ")])
        alice.cmd("carol", "e2ee status")
        carol.wait_for(timeout=T, event="write",
                       pred=lambda e: e["text"].startswith("?E2K "))
        n = offers()
        self.assertEqual(alice.cmd("carol", "e2ee on")["status"], "ok")
        carol.wait_for(timeout=T, event="write",
                       pred=lambda e: e["text"].startswith("?E2K ") and offers() > n)
        n = offers()
        alice.signoff()
        alice.signon(timeout=T)
        carol.wait_for(timeout=T, event="write",
                       pred=lambda e: e["text"].startswith("?E2K ") and offers() > n)
        self.assert_clean(alice, carol)


class FloodControl(IrcBase):
    """ngIRCd as it ships: its flood control delays a new client's lines."""

    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        n = harness.NgIRCd(self.h.dir)
        with open(n.config) as f:
            conf = f.read()
        self.assertIn("\tMaxPenaltyTime = 0\n", conf)
        with open(n.config, "w") as f:
            f.write(conf.replace("\tMaxPenaltyTime = 0\n", ""))
        n.start()
        self.h._servers.append(n)
        self.h._ngircd = n
        self.server = n

    def test_first_message_to_a_plugin_user_goes_encrypted(self):
        alice, bob = self.start(tap=("alice",))
        # Bob's client has just sent a burst of commands (as after signing
        # on): ngIRCd now holds each of his lines back, his answer to
        # Alice's offer too (about 8 s here).
        bob.add_buddy("alice")
        for _ in range(6):
            bob.cmd("dave", "whois bob")
        b = bob.mark()
        alice.send("bob", "first words " + SECRET_A)
        bob.wait_message(MARK_U + "first words " + SECRET_A, who="alice", since=b,
                         timeout=T + 20)
        alice.ping()
        self.assertNotIn(SECRET_A, alice.tap.text())
        self.assert_clean(alice, bob)


class WithoutPlugin(IrcBase):
    def test_person_without_plugin(self):
        alice, carol = self.start(nicks=("alice", "carol"), plain=("carol",))
        c = carol.mark()
        alice.cmd("carol", "e2ee status")
        offer = carol.wait_for(since=c, timeout=T, event="write",
                               pred=lambda e: "RECV" in e["flags"])
        # One readable line first, no markup trouble (the key data, with
        # its prekey longer than an IRC line, follows in fragments).
        self.assertTrue(offer["text"].startswith("?E2K "), offer["text"])
        self.assertRegex(offer["text"], r"[A-Za-z]+ [a-z]+ [a-z]+ [a-z]+")
        # Opportunistic: with no key, the message waits for an answer, then
        # goes as is, and Alice is told it went unencrypted and why.  The
        # offer is re-sent a few times at most, never once per message.
        c, a = carol.mark(), alice.mark()
        alice.send("carol", "hi carol, plain")
        alice.send("carol", "second")
        carol.wait_message("hi carol, plain", who="alice", since=c, timeout=T + 20)
        carol.wait_message("second", who="alice", since=c, timeout=T)
        wait_system(alice, "Sent UNENCRYPTED", since=a)
        alice.wait_message(MARK_PLAIN + "second", flag="SEND", since=a, timeout=T)
        offers = [t for t in recv_texts(carol) if t.startswith("?E2K ")]
        self.assertGreaterEqual(len(offers), 1)
        self.assertLessEqual(len(offers), 5)

        # Once encryption is required, nothing goes out in plaintext.
        self.assertEqual(alice.cmd("carol", "e2ee require")["status"], "ok")
        a, c = alice.mark(), carol.mark()
        alice.send("carol", "required " + SECRET_A)
        wait_system(alice, "NOT sent", since=a)
        alice.ping()
        self.assertEqual(alice.find(since=a, event="sent-raw"), [])
        time.sleep(1.0)
        self.assertEqual([t for t in recv_texts(carol, since=c) if SECRET_A in t], [])
        self.assert_clean(alice, carol)


class LastStepRawLines(IrcBase):
    """The raw line is parsed as the server parses it: any spacing, a
    prefix, NOTICE, CTCP ACTION, several lines, several targets."""

    def test_raw_lines_cannot_send_plaintext(self):
        alice, bob = self.pair(tap=("alice",))
        lines = (
            "PRIVMSG  bob :double space " + SECRET_A,
            "PRIVMSG bob    :" + SECRET_A,
            "PRIVMSG\tbob\t:tab " + SECRET_A,
            ":alice PRIVMSG bob :prefix " + SECRET_A,
            "privmsg BOB :case " + SECRET_A,
            "PRIVMSG #nowhere,bob :two targets " + SECRET_A,
            "PRIVMSG bob!bob@127.0.0.1 :full mask " + SECRET_A,
            "PRIVMSG bob " + SECRET_A,
            "NOTICE bob :" + SECRET_A,
            "PRIVMSG bob :\x01ACTION waves " + SECRET_A + "\x01",
            "PRIVMSG bob :?OTR " + SECRET_A,
            "PRIVMSG bob :?E2E: " + SECRET_A,
            "PRIVMSG bob :?E2K:" + SECRET_A.replace("-", " "),
            "PRIVMSG bob :\x01VERSION\x01 " + SECRET_A,
        )
        b = bob.mark()
        for policy in ("require", "on"):
            self.assertEqual(alice.cmd("bob", "e2ee " + policy)["status"], "ok")
            for line in lines:
                a = alice.mark()
                alice.cmd("bob", "quote " + line)
                wait_system(alice, "NOT sent", since=a, conv="bob")
            a = alice.mark()
            alice.cmd("bob", "notice bob by notice " + SECRET_B)
            wait_system(alice, "NOT sent", since=a, conv="bob")
        self.converse(alice, bob, "still encrypted")
        alice.ping()
        time.sleep(1.5)   # libpurple's IRC queue
        for token in (SECRET_A, SECRET_B):
            self.assertNotIn(token, alice.tap.text())
        self.assertEqual([t for t in recv_texts(bob, since=b)
                          if SECRET_A in t or SECRET_B in t], [])
        self.assert_clean(alice, bob)

    def test_dcc_file_offer_is_refused(self):
        alice, bob = self.pair(tap=("alice",))
        offer = ("PRIVMSG bob :\x01DCC SEND \"salary-%s.xlsx\" 2130706433 40000 1234\x01"
                 % SECRET_A)
        for policy in ("require", "on"):
            self.assertEqual(alice.cmd("bob", "e2ee " + policy)["status"], "ok")
            a = alice.mark()
            alice.cmd("bob", "quote " + offer)
            line = wait_system(alice, "File transfer NOT started", since=a, conv="bob")
            self.assertIn("/e2ee off", line["text"])
        # With /e2ee off the user may send it, knowing it is not encrypted.
        self.assertEqual(alice.cmd("bob", "e2ee off")["status"], "ok")
        alice.cmd("bob", "quote PRIVMSG bob :\x01DCC SEND \"agreed.txt\" 2130706433 40000 1\x01")
        alice.ping()
        time.sleep(1.5)   # libpurple's IRC queue
        wire = alice.tap.text()
        self.assertIn("agreed.txt", wire)
        self.assertNotIn(SECRET_A, wire)
        self.assert_clean(alice, bob)


if __name__ == "__main__":
    harness.main(servers=("ngircd",), need_plugin=True)
