#!/usr/bin/env python3
"""XMPP the XMPP way: keys in PEP (XEP-0163) on our own node, read before a
first message, pushed on change; presence without the key tag.

Real libpurple clients with the built plugin against a real Prosody with
mod_pep on 127.0.0.1.
"""

import base64
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = harness.PLUGIN_ID
T = 25.0
PREFS = "/plugins/core/" + P
MARK_U = "[\U0001F512 unverified] "
SECRET = "pep-secret-2718"
STATUS_TAG = "[e2ee:"
NODE = "urn:purple-e2ee:keys:0"
# A compact key set (version 1, caps v1, x, y) holding the P-256 base point.
P256_G_COMPACT = base64.urlsafe_b64encode(bytes([1, 1]) + bytes.fromhex(
    "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
    "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")
).decode().rstrip("=")


def wait_debug(client, text, timeout=T):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in client.debug_log():
            return
        time.sleep(0.2)
    raise harness.HarnessError("%s: %r not in the debug log after %.0fs\n%s"
                               % (client.name, text, timeout,
                                  client.debug_log()[-3000:]))


def wait_system(client, contains, since=0, timeout=T):
    return client.wait_for(
        pred=lambda e: "SYSTEM" in e.get("flags", ())
        and contains in (e.get("text") or ""),
        since=since, timeout=timeout, event="write",
        what="system line with %r" % contains)


def server_store(server):
    text = ""
    for root, _, files in os.walk(server.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                text += fh.read().decode("utf-8", "replace")
    return text


# A plain XMPP client (Debian's python3-slixmpp): signs in, prints every
# message stanza it receives as one line of XML, leaves after the first
# one with a body or after a bound.
PLAIN_CLIENT = r"""
import asyncio, sys, slixmpp
jid, password, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = slixmpp.ClientXMPP(jid, password)
x["feature_mechanisms"].unencrypted_plain = True
def start(event):
    x.send_presence()
    print("READY", flush=True)
def message(msg):
    print("STANZA " + str(msg).replace("\n", " "), flush=True)
    if msg["body"]:
        x.disconnect()
x.add_event_handler("session_start", start)
x.add_event_handler("message", message)
x.add_event_handler("disconnected", lambda e: x.loop.stop())
x.connect(("127.0.0.1", port), disable_starttls=True, force_starttls=False)
x.loop.call_later(15, x.loop.stop)
x.loop.run_forever()
"""


def plain_client_stanzas(server, user, timeout=30):
    python = "/usr/bin/python3"
    r = subprocess.run([python, "-c", PLAIN_CLIENT, server.jid(user, "plain"),
                        server.passwords[user], str(server.port)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    if "READY" not in out:
        raise harness.HarnessError("slixmpp did not sign in:\n" + out[-3000:])
    return [l[7:] for l in out.splitlines() if l.startswith("STANZA ")]



# A plain XMPP client that sends raw stanzas after sign-on, then leaves:
# the other side of an attack, or a server rewriting what it stores.
RAW_SENDER = r"""
import sys, slixmpp
jid, password, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
stanzas = sys.argv[4:]
x = slixmpp.ClientXMPP(jid, password)
x["feature_mechanisms"].unencrypted_plain = True
def start(event):
    for st in stanzas:
        x.send_raw(st)
    print("SENT", flush=True)
    x.loop.call_later(2, x.disconnect)
x.add_event_handler("session_start", start)
x.add_event_handler("disconnected", lambda e: x.loop.stop())
x.connect(("127.0.0.1", port), disable_starttls=True, force_starttls=False)
x.loop.call_later(15, x.loop.stop)
x.loop.run_forever()
"""


def raw_sender(server, user, *stanzas, resource="raw", timeout=30):
    r = subprocess.run(["/usr/bin/python3", "-c", RAW_SENDER,
                        server.jid(user, resource), server.passwords[user],
                        str(server.port)] + list(stanzas),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    if "SENT" not in out:
        raise harness.HarnessError("slixmpp did not sign in:\n" + out[-3000:])



class PepBase(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=("alice", "bob"),
                                     extra_modules=("pep",))

    def client(self, user, notify=True, **kw):
        c = self.h.xmpp_client(user, plugins=[P], passphrase=user + "-pass",
                               connect=False, **kw)
        if not notify:
            c.set_pref(PREFS + "/xmpp_pep_notify", False)
        c.signon(timeout=T)
        wait_debug(c, "PEP publication of %s accepted" % c.jid)
        return c


class FirstMessage(PepBase):
    def test_key_from_pep_first_message_offline_encrypted(self):
        # Bob publishes and leaves before Alice ever comes online.
        bob = self.client("bob")
        bob.stop()
        self.h._clients.remove(bob)
        # Without +notify nothing is pushed to Alice: only the read before
        # the first message can find Bob's key.
        alice = self.client("alice", notify=False)
        self.assertNotIn("PEP key list of bob@localhost", alice.debug_log())
        a = alice.mark()
        text = "first words " + SECRET
        alice.send(bob.jid, text)
        raw = alice.wait_event("sent-raw", since=a, timeout=T)
        self.assertTrue(raw["text"].startswith("?E2E:"), raw["text"][:80])
        self.assertIn("asked for the PEP key list of bob@localhost",
                      alice.debug_log())
        wait_system(alice, "waits up to", since=a)
        self.assertFalse([e for e in alice.writes(since=a)
                          if "Sent UNENCRYPTED" in (e.get("text") or "")])
        # Bob's next sign-on gets it from the offline store and reads it
        # (Alice's key also from PEP: her presence carries no tag).
        bob = self.h.xmpp_client("bob", plugins=[P], passphrase="bob-pass",
                                 user_dir=bob.user_dir, name="bob")
        bob.wait_message(MARK_U + text, who=alice.jid, timeout=T)
        self.assertNotIn(SECRET, self.server.log_text())
        store = server_store(self.server)
        self.assertNotIn(SECRET, store)
        self.assertNotIn(SECRET, alice.debug_log() + bob.debug_log())

    def test_no_key_in_pep_goes_as_policy_says_and_user_is_told(self):
        # Bob has no plugin: his node is empty, the wait ends at the answer.
        bob = self.h.xmpp_client("bob")
        alice = self.client("alice", notify=False)
        a = alice.mark()
        alice.send(bob.jid, "hello plain bob")
        bob.wait_message("hello plain bob", since=0, timeout=T)
        wait_system(alice, "Sent UNENCRYPTED", since=a)
        # required: nothing leaves, the user is told
        alice.set_pref(PREFS + "/policy", "required")
        b = bob.mark()
        a = alice.mark()
        alice.send(bob.jid, "must not leave " + SECRET)
        wait_system(alice, "NOT sent", since=a)
        time.sleep(1)
        self.assertFalse([e for e in bob.writes(since=b, flag="RECV")
                          if SECRET in e["text"]])
        self.assertNotIn(SECRET, self.server.log_text())


class PushedChange(PepBase):
    def test_new_device_pushed_by_pep_is_announced_not_trusted(self):
        bob = self.client("bob")
        alice = self.client("alice")
        wait_debug(alice, "PEP key list of bob@localhost: 1 key(s)")
        # Bob's second installation publishes its own item while Bob's
        # first is offline (no presence of it reaches Alice): the server
        # pushes the change, Alice reads the node, the new key is a NEW
        # DEVICE, never trusted on first use.
        bob.stop()
        self.h._clients.remove(bob)
        a = alice.mark()
        self.h.xmpp_client("bob", plugins=[P], passphrase="bob2-pass",
                           resource="other", name="bob2")
        line = wait_system(alice, "NEW DEVICE", since=a)
        self.assertIn("bob@localhost", line["text"])
        self.assertIn("PEP key list of bob@localhost: 2 key(s)",
                      alice.debug_log())


class Fallback(PepBase):
    def test_plain_client_sees_the_sentence_not_base64(self):
        if not os.path.exists("/usr/lib/python3/dist-packages/slixmpp"):
            self.skipTest("python3-slixmpp is not installed")
        bob = self.client("bob")
        bob.stop()
        self.h._clients.remove(bob)
        alice = self.client("alice")
        a = alice.mark()
        alice.send(bob.jid, "<b>bold</b> words " + SECRET)
        raw = alice.wait_event("sent-raw", since=a, timeout=T)
        self.assertTrue(raw["text"].startswith("?E2E:"), raw["text"][:80])
        time.sleep(1)
        # Bob on a client without the plugin: the offline message.
        stanzas = [st for st in plain_client_stanzas(self.server, "bob")
                   if "<body" in st]
        self.assertEqual(len(stanzas), 1, stanzas)
        st = stanzas[0]
        body = re.search(r"<body>(.*?)</body>", st, re.S).group(1)
        self.assertIn("end-to-end encrypted with purple-e2ee", body)
        self.assertNotIn("?E2E:", body)
        self.assertNotIn(SECRET, st)
        self.assertRegex(st, r'<encryption[^>]*xmlns="urn:xmpp:eme:0"')
        self.assertRegex(st, r'namespace="urn:purple-e2ee:msg:0"')
        self.assertRegex(st, r'<encrypted xmlns="urn:purple-e2ee:msg:0">\?E2E:')
        self.assertNotIn("xhtml-im", st)
        self.assertNotIn(SECRET, self.server.log_text())
        self.assertNotIn(SECRET, server_store(self.server))


class Carbons(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=("alice", "bob"),
                                     extra_modules=("pep", "carbons"))

    def test_copies_on_the_other_device(self):
        bob = self.h.xmpp_client("bob", plugins=[P], passphrase="b")
        alice = self.h.xmpp_client("alice", plugins=[P], passphrase="a")
        wait_debug(alice, "PEP key list of bob@localhost: 1 key(s)")
        wait_debug(bob, "PEP key list of alice@localhost: 1 key(s)")
        m = bob.mark()
        alice2 = self.h.xmpp_client("alice", plugins=[P], passphrase="a2",
                                    resource="work", name="alice2")
        wait_debug(alice2, "PEP key list of bob@localhost: 1 key(s)")
        wait_system(bob, "NEW DEVICE", since=m)
        self.assertEqual(bob.cmd(alice.jid, "e2ee trust")["status"], "ok")
        # Alice writes from her first device; Bob answers that resource.
        m2 = alice2.mark()
        m = bob.mark()
        alice.send(bob.jid, "from my first device " + SECRET)
        bob.wait_message(MARK_U + "from my first device " + SECRET,
                         since=m, timeout=T)
        # Her other device is told she sent something, never shown it as
        # Bob's words.
        wait_system(alice2, "from another device of yours", since=m2)
        self.assertFalse([e for e in alice2.writes(since=m2, flag="RECV")
                          if SECRET in e["text"]])
        m2 = alice2.mark()
        a = alice.mark()
        bob.send(alice.jid, "answer to the first device")
        alice.wait_message(MARK_U + "answer to the first device", since=a,
                           timeout=T)
        # the copy of Bob's answer reaches the other device, decrypted
        got = alice2.wait_message(MARK_U + "answer to the first device",
                                  since=m2, timeout=T)
        self.assertEqual(harness.bare(got["who"]), bob.jid)
        self.assertIn("<received xmlns='urn:xmpp:carbons:2'",
                      self.server.log_text().replace('"', "'"))
        # Once each installation accepted the other, the copy of what Alice
        # sends from her first device is read on the second, shown as hers.
        def own_kid(c):
            ev = c.wait_event("notify", timeout=T,
                              pred=lambda e: "YOUR account" in
                              (e.get("secondary") or ""))
            return re.search(r"device (\S+),", ev["secondary"]).group(1)
        kid2, kid1 = own_kid(alice), own_kid(alice2)
        self.assertEqual(alice.cmd(bob.jid, "e2ee own accept " + kid2)["status"], "ok")
        self.assertEqual(alice2.cmd(bob.jid, "e2ee own accept " + kid1)["status"], "ok")
        m2 = alice2.mark()
        alice.send(bob.jid, "second words " + SECRET)
        got = alice2.wait_for(
            event="write", since=m2, timeout=T, what="own copy",
            pred=lambda e: "SEND" in e["flags"]
            and "(from your other device) second words " + SECRET in e["text"])
        self.assertIn("\U0001F512", got["text"])
        self.assertFalse([e for e in alice2.writes(since=m2, flag="RECV")
                          if SECRET in e["text"]])
        self.assertNotIn(SECRET, self.server.log_text())


class Adversarial(PepBase):
    def setUp(self):
        super().setUp()
        if not os.path.exists("/usr/lib/python3/dist-packages/slixmpp"):
            self.skipTest("python3-slixmpp is not installed")

    def test_rewritten_pep_item_is_a_key_change_that_blocks(self):
        bob = self.client("bob")
        alice = self.client("alice")
        wait_debug(alice, "PEP key list of bob@localhost: 1 key(s)")
        kid = re.search(r"<item id='([^']+)'><keys xmlns='%s'>" % NODE,
                        bob.debug_log()).group(1)
        bob.stop()
        self.h._clients.remove(bob)
        # Bob's stored item is replaced, as a server could do, by a key
        # that is not his (the P-256 base point, a valid public key).
        a = alice.mark()
        raw_sender(self.server, "bob",
                   "<iq type='set' id='x1'><pubsub xmlns='http://jabber.org/"
                   "protocol/pubsub'><publish node='%s'><item id='%s'><keys "
                   "xmlns='%s'>%s</keys></item></publish></pubsub></iq>"
                   % (NODE, kid, NODE, P256_G_COMPACT))
        line = wait_system(alice, "CHANGED", since=a)
        self.assertIn("bob@localhost", line["text"])
        self.assertIn("BLOCKED", line["text"])
        a = alice.mark()
        alice.send(bob.jid, "not for the new key " + SECRET)
        wait_system(alice, "NOT sent", since=a)
        self.assertNotIn(SECRET, self.server.log_text())

    def test_forged_carbon_copy_is_dropped(self):
        bob = self.client("bob")
        alice = self.client("alice")
        wait_debug(alice, "PEP key list of bob@localhost: 1 key(s)")
        a = alice.mark()
        # Bob claims Alice sent him something from another device, and
        # wraps a message as if the server had copied it.
        raw_sender(self.server, "bob",
                   "<message to='alice@localhost/test' type='chat'><sent "
                   "xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:"
                   "forward:0'><message from='alice@localhost/x' to='bob@"
                   "localhost' type='chat'><body>forged-sent-1</body></message>"
                   "</forwarded></sent></message>",
                   "<message to='alice@localhost/test' type='chat'><received "
                   "xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:"
                   "forward:0'><message from='mallory@localhost/x' to='alice@"
                   "localhost' type='chat'><body>forged-recv-2</body></message>"
                   "</forwarded></received></message>",
                   "<message to='alice@localhost/test' type='chat'>"
                   "<body>control-3</body></message>")
        alice.wait_message(contains="control-3", timeout=T, since=a)
        texts = " ".join(e.get("text") or "" for e in alice.writes(since=a))
        self.assertNotIn("forged-sent-1", texts)
        self.assertNotIn("forged-recv-2", texts)
        self.assertIn("dropped a carbon copy", alice.debug_log())


class VcardFallback(unittest.TestCase):
    """A server without PEP: the key block goes to the vCard, which is read
    silently before a first message."""

    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=("alice", "bob"))

    def test_first_message_to_offline_buddy_uses_the_vcard(self):
        bob = self.h.xmpp_client("bob", plugins=[P], passphrase="b")
        wait_debug(bob, "PEP publication of bob@localhost refused")
        wait_debug(bob, "the key block in the profile of bob@localhost")
        bob.stop()
        self.h._clients.remove(bob)
        alice = self.h.xmpp_client("alice", plugins=[P], passphrase="a")
        a = alice.mark()
        text = "via the profile " + SECRET
        alice.send(bob.jid, text)
        raw = alice.wait_event("sent-raw", since=a, timeout=T)
        self.assertTrue(raw["text"].startswith("?E2E:"), raw["text"][:80])
        self.assertIn("vCard of bob@localhost: 1 key(s)", alice.debug_log())
        # read silently: no profile window
        self.assertEqual(alice.find(since=a, event="userinfo"), [])
        bob = self.h.xmpp_client("bob", plugins=[P], passphrase="b",
                                 user_dir=bob.user_dir, name="bob")
        bob.wait_message(MARK_U + text, who=alice.jid, timeout=T)
        self.assertNotIn(SECRET, self.server.log_text())
        self.assertNotIn(SECRET, server_store(self.server))


class CleanPresence(PepBase):
    def test_presence_on_the_wire_carries_no_key_tag(self):
        bob = self.client("bob")
        alice = self.client("alice")
        alice.set_status("reading a book")
        bob.wait_buddy_status(alice.jid, message="reading a book", timeout=T)
        log = self.server.log_text()
        presences = re.findall(r"<presence.*?</presence>", log, re.S)
        self.assertTrue(presences)
        self.assertFalse([p for p in presences if STATUS_TAG in p])
        self.assertIn(NODE, log)
        # the vCard block is off by default
        self.assertNotIn("BEGIN PURPLE-E2EE KEYS", log)
        # the option keeps it for servers without PEP
        alice.set_pref(PREFS + "/xmpp_status_tag", True)
        alice.set_status("tagged")
        bob.wait_buddy_status(alice.jid, timeout=T,
                              pred=lambda e: STATUS_TAG in (e.get("message") or ""))


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
