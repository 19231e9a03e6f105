#!/usr/bin/env python3
"""The server and other users as attackers, on IRC.

Alice's connection runs through a Relay (relay.py) in front of a real
ngIRCd that drops, rewrites and injects lines; bare IRC connections
(IrcRaw) play third users and floods.  One test runs ngIRCd with its
default flood control.  The assertions are on the bytes that left Alice's
client and on what the conversations show.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import relay  # noqa: E402

P = harness.PLUGIN_ID
T = 25.0
LOCK = "\U0001F512"
MARK_V = "[" + LOCK + " verified] "
SECRET = "mike-secret-1618"
SECRET2 = "nova-secret-1414"


def is_system(e):
    return "SYSTEM" in e.get("flags", ())


def system_lines(client, since=0):
    return [e["text"] for e in client.find(since=since, event="write")
            if is_system(e)]


def status_text(client, buddy):
    since = client.mark()
    client.cmd(buddy, "e2ee status")
    return "\n".join(system_lines(client, since))


def wait_key(client, buddy, timeout=T):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = status_text(client, buddy)
        if "safety number" in text:
            return text
        time.sleep(0.3)
    raise harness.HarnessError("%s: no key of %s; last status:\n%s"
                               % (client.name, buddy, text))


def dir_bytes(path):
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def vm(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class IrcBase(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.ngircd()
        self.raws = []
        self.addCleanup(lambda: [r.close() for r in self.raws])

    def start(self, rules=(), bob_plugin=True):
        alice = relay.relayed_client(self.h, "prpl-irc", "alice", rules=rules)
        bob = self.h.irc_client("bob", plugins=[P] if bob_plugin else [],
                                wait=False)
        self.h.wait_started(alice, bob, timeout=T)
        # Each is on the other's buddy list (a contact, not a stranger).
        alice.add_buddy("bob")
        bob.add_buddy("alice")
        return alice, bob

    def raw(self, nick):
        r = relay.IrcRaw(self.server.port, nick)
        self.raws.append(r)
        return r

    def settle(self, client):
        client.ping()
        time.sleep(1.5)   # libpurple's IRC send queue runs once a second

    def wire(self, alice):
        return alice.relay.text(relay.TO_SERVER)


class Downgrades(IrcBase):
    """Issue 9 item 4."""

    def test_dropped_key_offer(self):
        dropped = []

        def drop_first_offer(way, line):
            if way == relay.TO_SERVER and b"?E2K:" in line and not dropped:
                dropped.append(line)
                return b""
            return None
        alice, bob = self.start(rules=[drop_first_offer])
        b = bob.mark()
        alice.send("bob", "first words " + SECRET)
        got = bob.wait_message(contains=SECRET, who="alice", since=b,
                               timeout=T + 20)
        self.assertIn(LOCK, got["text"])
        self.assertEqual(len(dropped), 1)
        self.settle(alice)
        self.assertNotIn(SECRET, self.wire(alice))

    def test_forged_nick_change_under_require(self):
        alice, bob = self.start()
        wait_key(alice, "bob")
        self.assertEqual(alice.cmd("bob", "e2ee require")["status"], "ok")
        a = alice.mark()
        alice.relay.inject(":bob!bob@127.0.0.1 NICK :bob_")
        alice.ping()
        time.sleep(0.5)
        a = alice.mark()
        alice.send("bob_", "after the nick change " + SECRET)
        # Give a held message every chance to leave: until the user is told
        # it was not sent, or longer than any hold.
        try:
            alice.wait_for(since=a, timeout=T, event="write",
                           pred=lambda e: is_system(e) and
                           "not sent" in (e.get("text") or "").lower())
        except harness.HarnessError:
            pass
        self.settle(alice)
        self.assertNotIn(SECRET, self.wire(alice))

    def test_forged_nick_change_key_is_not_tofu(self):
        # The server says Bob is now bob_ and answers for bob_ with its own
        # key: Alice is told, and that key waits for her decision.
        alice, bob = self.start()
        wait_key(alice, "bob")
        evil = relay.Identity(self.h.dir, "server-bob")
        a = alice.mark()
        alice.relay.inject(":bob!bob@127.0.0.1 NICK :bob_")
        alice.wait_for(since=a, timeout=T, event="write",
                       pred=lambda e: is_system(e) and
                       "NOT trusted on first use" in (e.get("text") or ""))
        alice.relay.inject(":bob_!bob@127.0.0.1 PRIVMSG alice :?E2K:%s hello"
                           % evil.compact())
        deadline = time.monotonic() + T
        st = ""
        while time.monotonic() < deadline and evil.kid[:8] not in st:
            st = status_text(alice, "bob_")
            time.sleep(0.3)
        self.assertRegex(st, r"%s[^\n<]*awaiting your decision"
                         % re.escape(evil.kid[:8]))
        self.assertNotIn("trusted on first use", st)
        a = alice.mark()
        alice.send("bob_", "after the nick change " + SECRET)
        self.settle(alice)
        self.assertNotIn(SECRET, self.wire(alice))

    def test_msg_and_query_do_not_bypass(self):
        alice, bob = self.start()
        wait_key(alice, "bob")
        # With a known key (default policy) and then under require.
        alice.cmd("bob", "msg bob plain by msg " + SECRET)
        alice.cmd("bob", "query bob plain by query " + SECRET)
        self.assertEqual(alice.cmd("bob", "e2ee require")["status"], "ok")
        alice.cmd("bob", "msg bob plain by msg " + SECRET2)
        alice.cmd("bob", "query bob plain by query " + SECRET2)
        self.settle(alice)
        wire = self.wire(alice)
        self.assertNotIn(SECRET, wire)
        self.assertNotIn(SECRET2, wire)


class DefaultFloodControl(IrcBase):
    """Issue 9 item 4: ngIRCd as shipped (its flood control on)."""

    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.raws = []
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

    def test_first_message_goes_encrypted(self):
        alice, bob = self.start()
        # Bob's client has just sent a burst (as after signing on); ngIRCd
        # now delays each of his lines, his answer to the offer too.
        for _ in range(6):
            bob.cmd("dave", "whois bob")
        b = bob.mark()
        alice.send("bob", "first words " + SECRET)
        got = bob.wait_message(contains=SECRET, who="alice", since=b,
                               timeout=T + 25)
        self.assertIn(LOCK, got["text"])
        self.settle(alice)
        self.assertNotIn(SECRET, self.wire(alice))


class Spoofing(IrcBase):
    """Issue 9 item 7 on IRC."""

    def test_third_user_types_the_marker(self):
        alice, bob = self.start()
        wait_key(alice, "bob")
        carol = self.raw("carol")
        a = alice.mark()
        carol.privmsg("alice", MARK_V + "New IBAN DE00 4444")
        # The server injects plaintext "from Bob", whose key is known.
        alice.relay.inject(":bob!bob@127.0.0.1 PRIVMSG alice :" + MARK_V +
                           "New IBAN DE00 5555")
        for n in ("4444", "5555"):
            got = alice.wait_message(contains="DE00 " + n, since=a, timeout=T)
            self.assertNotIn(LOCK, got["text"])
            self.assertIn("not encrypted", got["text"].lower())


class UnboundedState(IrcBase):
    """Issue 9 item 10: unauthenticated input does not grow state."""

    def test_2000_stranger_offers(self):
        alice, bob = self.start()
        wait_key(alice, "bob")
        kdir = os.path.join(alice.user_dir, "purple-e2ee")
        self.settle(alice)
        before = dir_bytes(kdir)
        rss0 = vm(alice.proc.pid, "VmRSS")
        flood = self.raw("s0")
        keys = relay.many_public_keys(2000)
        for i, k in enumerate(keys):
            flood.send("NICK s%04d" % (i + 1))
            flood.privmsg("alice", "?E2K:%s hello" % relay.compact_set([k]))
        last = "s%04d" % len(keys)
        flood.privmsg("alice", "done")
        alice.wait_for(timeout=T * 4, event="received-raw",
                       pred=lambda e: (e.get("from") or "").startswith(last)
                       and e.get("text") == "done")
        time.sleep(2.0)   # the keyring's save delay
        after = dir_bytes(kdir)
        rss1 = vm(alice.proc.pid, "VmRSS")
        sys.stderr.write("2000 stranger offers: keyring %d -> %d bytes, "
                         "VmRSS %d -> %d kB, VmHWM %d kB\n"
                         % (before, after, rss0, rss1,
                            vm(alice.proc.pid, "VmHWM")))
        self.assertLess(after - before, 64 * 1024,
                        "the keyring grew by %d bytes" % (after - before))
        st = status_text(alice, "s0100")
        self.assertNotIn("trusted on first use", st)
        # Bob is untouched and still talks encrypted.
        b = bob.mark()
        alice.send("bob", "after the flood " + SECRET)
        got = bob.wait_message(contains=SECRET, who="alice", since=b, timeout=T)
        self.assertIn(LOCK, got["text"])
        self.assertTrue(alice.alive())

    def test_cycling_nicks_do_not_evict_fragments(self):
        alice, bob = self.start()
        wait_key(alice, "bob")
        wait_key(bob, "alice")
        flood = self.raw("f0")
        a = alice.mark()
        # 16 nicks, each starting 8 fragmented messages it never finishes:
        # more partial messages than the global cap.
        n = 0
        for nick in range(16):
            flood.send("NICK f%02d" % nick)
            for j in range(8):
                n += 1
                flood.privmsg("alice", "?E2F:%08x:1/2:?E2E:AAAAAAAAAAAAAAAA" % n)
        flood.privmsg("alice", "flood done")
        alice.wait_for(since=a, timeout=T, event="received-raw",
                       pred=lambda e: e.get("text") == "flood done")
        # Now Bob's long (fragmented) message must arrive whole.
        long_text = "long message " + SECRET + " " + "x" * 900 + " end"
        m = alice.mark()
        bob.send("alice", long_text)
        got = alice.wait_message(contains=SECRET, who="bob", since=m,
                                 timeout=T + 10)
        self.assertIn(LOCK, got["text"])
        self.assertIn(" end", got["text"])
        frags = [e for e in alice.find(since=m, event="received-raw")
                 if (e.get("text") or "").startswith("?E2F:")]
        self.assertGreater(len(frags), 1, "Bob's message was not fragmented")

    def test_malformed_fragments_give_few_lines(self):
        alice, bob = self.start()
        flood = self.raw("g0")
        a = alice.mark()
        for i in range(200):
            flood.privmsg("alice", "?E2F:zz%06d:0/0:" % i)
        flood.privmsg("alice", "malformed done")
        alice.wait_for(since=a, timeout=T, event="received-raw",
                       pred=lambda e: e.get("text") == "malformed done")
        alice.ping()
        time.sleep(1.0)
        lines = system_lines(alice, a)
        sys.stderr.write("200 malformed fragments: %d system lines\n" % len(lines))
        self.assertLessEqual(len(lines), 10, lines[:12])


if __name__ == "__main__":
    harness.main(servers=("ngircd",), need_plugin=True)
