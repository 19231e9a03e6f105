#!/usr/bin/env python3
"""The server and a third user as attackers, on XMPP.

Real libpurple clients with the plugin talk through a Relay (relay.py) in
front of a real Prosody; the relay records, drops, rewrites and injects
stanzas as the server could.  Bare XMPP clients (XmppRaw) play a third
user, or the server posing as another login of the victim's own account.
Each test asserts the secure behaviour on what the wire carries and what a
conversation shows.
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
MARK_U = "[" + LOCK + " unverified] "
MARK_V = "[" + LOCK + " verified] "
SECRET = "kilo-secret-2718"
SECRET2 = "lima-secret-3141"


def is_system(e):
    return "SYSTEM" in e.get("flags", ())


def system_lines(client, since=0):
    return [e["text"] for e in client.find(since=since, event="write")
            if is_system(e)]


def shown(client, token, since=0):
    """Conversation lines (not the plugin's own notices) carrying token."""
    return [e for e in client.find(since=since, event="write")
            if token in (e.get("text") or "") and not is_system(e)]


def status_text(client, buddy):
    since = client.mark()
    client.cmd(buddy, "e2ee status")
    return "\n".join(system_lines(client, since))


def wait_status(client, buddy, pred, timeout=T):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = status_text(client, buddy)
        if pred(text):
            return text
        time.sleep(0.3)
    raise harness.HarnessError("%s: /e2ee status for %s never matched; last:\n%s"
                               % (client.name, buddy, text))


def envelope_element(body):
    """An armored envelope goes both in <body> and in the element the
    plugin carries it in, so either reads it."""
    if body.startswith("?E2E:"):
        return "<encrypted xmlns='urn:purple-e2ee:msg:0'>%s</encrypted>" % body
    return ""


def has_key(text):
    return "safety number" in text


class Base(unittest.TestCase):
    users = ("alice", "bob")

    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=self.users)
        self.raws = []
        self.addCleanup(self._close_raws)

    def _close_raws(self):
        for r in self.raws:
            r.close()

    def raw(self, user, resource="raw"):
        r = relay.XmppRaw(self.server.port, user, resource=resource)
        self.raws.append(r)
        return r

    def pair(self):
        """Alice through a relay, Bob direct; both know each other's key."""
        alice = relay.relayed_client(self.h, "prpl-jabber", "alice")
        bob = self.h.xmpp_client("bob", plugins=[P], wait=False)
        self.h.wait_started(alice, bob, timeout=T)
        wait_status(alice, bob.jid, has_key)
        wait_status(bob, alice.jid, has_key)
        return alice, bob

    def alice_key(self, alice):
        """Alice's published key (from her own presence on the wire)."""
        alice.relay.wait_unit(relay.TO_SERVER, "[e2ee:", timeout=T)
        keys = relay.presence_keys(alice.relay)[-1]
        self.assertEqual(len(keys), 1, keys)
        return keys[0]

    def bob_key(self, alice):
        alice.relay.wait_unit(relay.TO_CLIENT, "[e2ee:", timeout=T,
                              pred=lambda u: b"from='bob@" in u or
                              b'from="bob@' in u)
        keys = relay.presence_keys(alice.relay, relay.TO_CLIENT,
                                   sender="bob@")[-1]
        return keys[0]

    def send_env(self, alice, to, text):
        """Alice types `text` to `to`; returns her outgoing envelope."""
        a = alice.mark()
        alice.send(to, text)
        ev = alice.wait_event("sent-raw", since=a, timeout=T)
        return ev["text"]

    def inject_message(self, client, sender, body):
        client.relay.inject("<message from='%s' to='%s' type='chat' id='x%d'>"
                            "<body>%s</body>%s</message>"
                            % (sender, client.username, int(time.time() * 1000),
                               relay.xml_escape(body), envelope_element(body)))

    def inject_presence(self, client, sender, status):
        client.relay.inject("<presence from='%s' to='%s'><status>%s</status>"
                            "</presence>" % (sender, client.username,
                                             relay.xml_escape(status)))


class OwnDevice(Base):
    """Issue 9 item 1: the server adds itself as one of Alice's devices."""

    def test_evil_own_resource_gets_nothing_and_is_announced(self):
        alice, bob = self.pair()
        ax, ay = self.alice_key(alice)[1:]
        evil_id = relay.Identity(self.h.dir, "evil")
        a = alice.mark()
        r = alice.relay.mark()
        # A second login of Alice's account (the server could fake it) with
        # a key tag, then an in-band answer from that resource.
        evil = self.raw("alice", resource="evil")
        evil.presence(status="[e2ee:%s]" % evil_id.compact())
        evil.message(alice.username, "?E2A:%s answer" % evil_id.compact())
        alice.wait_event("received-raw", since=a, timeout=T,
                         pred=lambda e: "?E2A:" in (e.get("text") or ""))
        alice.ping()
        time.sleep(1.0)

        # Alice's next envelope to Bob is for Bob's device only.
        env = self.send_env(alice, bob.jid, "after the evil login " + SECRET)
        ids = relay.envelope_recipients(env)
        self.assertIsNotNone(ids, env[:40])
        self.assertNotIn(evil_id.device_id, ids)
        self.assertEqual(len(ids), 1, ids)
        bob.wait_message(contains=SECRET, who=alice.jid, timeout=T)

        # Her published key set never carries the evil key.
        time.sleep(1.0)
        for keys in relay.presence_keys(alice.relay, since=r):
            self.assertNotIn(evil_id.x, [k[1] for k in keys])
            self.assertIn(ax, [k[1] for k in keys])

        # She is told, loudly, in words that name her own account.
        lines = "\n".join(system_lines(alice, a)).lower()
        notices = [e for e in alice.find(since=a, event="notify")]
        told = ("own device" in lines or "your account" in lines or
                any("your account" in (n.get("primary") or "").lower()
                    for n in notices))
        self.assertTrue(told, "no own-device warning; system lines:\n" + lines)

        # And the evil key is not listed as a confirmed device.
        st = status_text(alice, bob.jid).lower()
        if evil_id.kid[:8].lower() in st:
            self.assertRegex(st, r"%s[^\n]*pending" % re.escape(evil_id.kid[:8].lower()))

        # What that login says is not shown: a valid v2 session start from
        # the evil key to Alice's (it authenticates: the held-back notice
        # comes only after that) is held back as a claimed own device's.
        pub = relay.public_jwk_file(self.h.dir, "alice", ax, ay)
        env = evil_id.seal(pub, "from your other login " + SECRET2,
                           "prpl-jabber:alice@localhost",
                           "prpl-jabber:alice@localhost", self.h.dir)
        self.assertEqual(relay.envelope_recipients(env), [relay.device_id_of(ax, ay)])
        m = alice.mark()
        evil.message(alice.username, env, extra=envelope_element(env))
        alice.wait_event("received-raw", since=m, timeout=T,
                         pred=lambda e: "?E2E:" in (e.get("text") or ""))
        alice.ping()
        time.sleep(1.0)
        self.assertEqual(shown(alice, SECRET2, since=m), [],
                         "the evil login's message was shown")
        held = [t for t in system_lines(alice, m)
                if "held back" in t and evil_id.kid[:8] in t]
        self.assertTrue(held, "no held-back notice: " + "\n".join(system_lines(alice, m)))
        self.assertIn("your account", held[0].lower())


class Reject(Base):
    """Issue 9 item 2: /e2ee reject fails closed."""

    def test_reject_then_send_leaves_nothing_readable(self):
        alice, bob = self.pair()
        bx, by = self.bob_key(alice)[1:]
        bob_kid = relay.kid_of(bx, by)
        res = alice.cmd(bob.jid, "e2ee reject " + bob_kid[:8])
        self.assertEqual(res["status"], "ok")
        self.assertRegex(status_text(alice, bob.jid),
                         r"%s: [^\n<]*rejected" % re.escape(bob_kid[:8]))
        r = alice.relay.mark()
        b = bob.mark()
        alice.send(bob.jid, "after reject " + SECRET)
        alice.ping()
        time.sleep(2.0)
        wire = alice.relay.text(relay.TO_SERVER)
        self.assertNotIn(SECRET, wire)
        self.assertEqual(shown(bob, SECRET, since=b), [])

        # The server now offers a "new" key for Bob: a key learned after
        # every device was rejected is a key change, never a first contact.
        new = relay.Identity(self.h.dir, "server-bob")
        self.inject_presence(alice, "bob@localhost/test",
                             "[e2ee:%s]" % new.compact())
        alice.ping()
        time.sleep(1.0)
        alice.send(bob.jid, "after the new key " + SECRET2)
        alice.ping()
        time.sleep(2.0)
        self.assertNotIn(SECRET2, alice.relay.text(relay.TO_SERVER))
        for u in alice.relay.find(relay.TO_SERVER, "?E2E:"):
            t = u.decode("utf-8", "replace")
            for env in re.findall(r"\?E2E:[A-Za-z0-9_-]+", t):
                # Every envelope Alice sends is a v2 one whose slots we read.
                ids = relay.envelope_recipients(env)
                self.assertIsNotNone(ids, env[:40])
                self.assertNotIn(new.device_id, ids,
                                 "an envelope was sealed for the server's key")
        st = status_text(alice, bob.jid)
        self.assertNotRegex(st, r"%s[^\n]*trusted on first use" % re.escape(new.kid[:8]))


class UnacceptedDevices(Base):
    """Issue 9 item 3: a new device's or a replacement key's messages are
    not shown as the buddy's words."""

    def forged(self, alice, ident, resource, text, with_prekey=False):
        """The server, holding `ident`, forges a protocol v2 session start
        from Bob's `resource` to Alice's published key: X3DH mode 2, or
        mode 1 with the signed prekey Alice published (with_prekey).
        Returns the envelope after checking it is what it claims to be."""
        akey = self.alice_key(alice)
        ax, ay = akey[1:]
        pub = relay.public_jwk_file(self.h.dir, "alice", ax, ay)
        extra = {}
        if with_prekey:
            self.assertIsNotNone(akey.record, "Alice published no prekey")
            extra = {"prekey": akey.record, "signing_key": akey.sign}
        env = ident.seal(pub, text, "prpl-jabber:bob@localhost",
                         "prpl-jabber:alice@localhost", self.h.dir, **extra)
        slots = relay.envelope_slots(env)
        self.assertIsNotNone(slots, env[:40])
        self.assertEqual([(sl["sender"], sl["recipient"], sl["type"], sl["mode"])
                          for sl in slots],
                         [(ident.device_id, relay.device_id_of(ax, ay), 2,
                           1 if with_prekey else 2)])
        self.inject_message(alice, "bob@localhost/" + resource, env)
        return env

    def held_back(self, alice, ident, since):
        """The plugin's notice that a message from `ident` was held back:
        given only after the envelope authenticated (src/e2ee-receive.c),
        so it shows the forgery was a valid message, not noise."""
        kid = ident.kid[:8]
        return [t for t in system_lines(alice, since)
                if "held back" in t and kid in t]

    def test_new_device_from_the_server_is_withheld(self):
        alice, bob = self.pair()
        evil = relay.Identity(self.h.dir, "bob-evil")
        a = alice.mark()
        self.inject_presence(alice, "bob@localhost/evil", "[e2ee:%s]" % evil.compact())
        wait_status(alice, bob.jid, lambda t: evil.kid[:8] in t)
        # The strongest start the server can make: with Alice's own prekey.
        self.forged(alice, evil, "evil", "from the new device " + SECRET,
                    with_prekey=True)
        alice.wait_event("received-raw", since=a, timeout=T,
                         pred=lambda e: "?E2E:" in (e.get("text") or ""))
        alice.ping()
        time.sleep(1.0)
        self.assertEqual(shown(alice, SECRET, since=a), [],
                         "a never accepted device's message was shown")
        self.assertTrue(self.held_back(alice, evil, a),
                        "no held-back notice: " + "\n".join(system_lines(alice, a)))
        # A positive control: once Alice accepts that device, the withheld
        # message is released (so the forged envelope itself was valid).
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust " + evil.kid[:8])["status"], "ok")
        got = alice.wait_message(contains=SECRET, since=m, timeout=T, flag=None,
                                 pred=lambda e: not is_system(e))
        self.assertIn(LOCK, got["text"])

    def test_replacement_key_is_withheld(self):
        alice, bob = self.pair()
        evil = relay.Identity(self.h.dir, "bob-replaced")
        a = alice.mark()
        # The server replaces every key of Bob by its own.
        self.inject_presence(alice, "bob@localhost/test", "[e2ee:%s]" % evil.compact())
        wait_status(alice, bob.jid, lambda t: evil.kid[:8] in t)
        # A start without prekey, as any device that never published one.
        self.forged(alice, evil, "test", "from the replaced key " + SECRET)
        alice.wait_event("received-raw", since=a, timeout=T,
                         pred=lambda e: "?E2E:" in (e.get("text") or ""))
        alice.ping()
        time.sleep(1.0)
        self.assertEqual(shown(alice, SECRET, since=a), [],
                         "the replacement key's message was shown")
        self.assertTrue(self.held_back(alice, evil, a),
                        "no held-back notice: " + "\n".join(system_lines(alice, a)))
        # Sending to Bob is blocked meanwhile: nothing readable on the wire,
        # and no envelope sealed for the replacement key.
        r = alice.relay.mark()
        alice.send(bob.jid, "while changed " + SECRET2)
        alice.ping()
        time.sleep(1.5)
        self.assertNotIn(SECRET2, alice.relay.text(relay.TO_SERVER))
        with alice.relay._lock:
            sent = [u for w, u in alice.relay.units[r:] if w == relay.TO_SERVER]
        for u in sent:
            for env in re.findall(r"\?E2E:[A-Za-z0-9_-]+", u.decode("utf-8", "replace")):
                ids = relay.envelope_recipients(env)
                self.assertIsNotNone(ids, env[:40])
                self.assertNotIn(evil.device_id, ids,
                                 "an envelope was sealed for the replacement key")
        # Control: accepting the replacement key releases the held message
        # (the forged start was a valid v2 message all along).
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust " + evil.kid[:8])["status"], "ok")
        got = alice.wait_message(contains=SECRET, since=m, timeout=T, flag=None,
                                 pred=lambda e: not is_system(e))
        self.assertIn(LOCK, got["text"])


class VerifyAll(Base):
    """Issue 9 item 9: /e2ee verify all never verifies an injected device."""

    def test_verify_all_skips_the_injected_device(self):
        alice, bob = self.pair()
        bx, by = self.bob_key(alice)[1:]
        real = relay.kid_of(bx, by)[:8]
        evil = relay.Identity(self.h.dir, "bob-injected")
        self.inject_presence(alice, "bob@localhost/evil", "[e2ee:%s]" % evil.compact())
        wait_status(alice, bob.jid, lambda t: evil.kid[:8] in t)
        # What the user is shown before verifying: every device's whole
        # number, and that all of it must be compared.
        a = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee verify")["status"], "ok")
        said = "\n".join(system_lines(alice, a)).lower()
        numbers = re.findall(r"device (\S{8}): ((?:\d{5} ){11}\d{5})",
                             "\n".join(system_lines(alice, a)))
        self.assertEqual(sorted(k for k, _ in numbers),
                         sorted([real, evil.kid[:8]]), said)
        self.assertEqual(alice.cmd(bob.jid, "e2ee verify all")["status"], "ok")
        st = status_text(alice, bob.jid)

        def state(kid):
            m = re.search(r"device %s: ([^<\n]*)" % re.escape(kid), st)
            self.assertIsNotNone(m, st)
            return m.group(1).replace("not verified", "")
        self.assertIn("verified", state(real))
        self.assertNotIn("verified", state(evil.kid[:8]))
        # And the user was asked to compare each number in full (60 digits).
        self.assertTrue("60" in said or "in full" in said,
                        "/e2ee verify does not ask to compare the whole number: "
                        + said)


class Persistence(Base):
    """Issue 9 items 11 and 12, as far as they show end to end."""

    def test_replay_after_a_kill_is_not_shown_again(self):
        alice, bob = self.pair()
        r = alice.relay.mark()
        a = alice.mark()
        bob.send(alice.jid, "once only " + SECRET)
        unit = alice.relay.wait_unit(relay.TO_CLIENT, "?E2E:", since=r, timeout=T)
        alice.wait_message(contains=SECRET, who=bob.jid, since=a, timeout=T)
        # Killed at once, inside any save delay.
        os.killpg(alice.proc.pid, 9)
        alice.proc.wait(timeout=10)
        alice.stop(timeout=1)
        self.h._clients.remove(alice)
        again = relay.relayed_client(self.h, "prpl-jabber", "alice",
                                     user_dir=alice.user_dir, name="alice-again")
        self.h.wait_started(again, timeout=T)
        again.relay.wait_unit(relay.TO_SERVER, "[e2ee:", timeout=T)
        m = again.mark()
        again.relay.inject(unit)
        again.wait_event("received-raw", since=m, timeout=T,
                         pred=lambda e: "?E2E:" in (e.get("text") or ""))
        again.ping()
        time.sleep(1.0)
        self.assertEqual(shown(again, SECRET, since=m), [],
                         "a replayed envelope was shown again after the restart")

    def test_recovery_makes_a_new_identity(self):
        alice = self.h.xmpp_client("alice", plugins=[P], timeout=T)

        def own_device(c):
            m = re.search(r"Your device key for [^:]*: device (\S{8})",
                          status_text(c, "bob@localhost"))
            self.assertIsNotNone(m)
            return m.group(1)
        old = own_device(alice)
        time.sleep(1.0)   # any pending save
        alice.stop()
        # SECURITY.md's recovery step: move the keyring files away (a
        # backup copy left beside them must not bring the identity back).
        kdir = os.path.join(alice.user_dir, "purple-e2ee")
        away = os.path.join(self.h.dir, "moved-away")
        os.makedirs(away)
        for f in os.listdir(kdir):
            if f.startswith("keyring.sqlite") or f == "keyring.json":
                os.rename(os.path.join(kdir, f), os.path.join(away, f))
        self.assertTrue(os.listdir(away), "no keyring file found")
        again = self.h.restart(alice, plugins=[P], timeout=T)
        self.assertNotEqual(own_device(again), old,
                            "the old identity came back after the recovery step")

    def test_two_clients_on_one_keyring_keep_a_reject(self):
        alice, bob = self.pair()
        alice2 = self.h.xmpp_client("alice", resource="second", name="alice2",
                                    user_dir=alice.user_dir, plugins=[P],
                                    timeout=T)
        wait_status(alice2, bob.jid, has_key)
        bx, by = self.bob_key(alice)[1:]
        kid = relay.kid_of(bx, by)[:8]
        self.assertEqual(alice.cmd(bob.jid, "e2ee reject " + kid)["status"], "ok")
        self.assertRegex(status_text(alice, bob.jid), r"%s: [^\n<]*rejected" % kid)
        time.sleep(1.0)
        alice.stop()
        self.h._clients.remove(alice)
        # The other client on the same keyring saves last, after the reject.
        m = alice2.mark()
        bob.send("alice@localhost/second", "to the second client")
        alice2.wait_event("received-raw", since=m, timeout=T)
        time.sleep(1.0)
        alice2.stop()
        self.h._clients.remove(alice2)
        third = self.h.xmpp_client("alice", resource="third", name="alice3",
                                   user_dir=alice.user_dir, plugins=[P],
                                   timeout=T)
        st = wait_status(third, bob.jid, has_key)
        self.assertRegex(st, r"%s: [^\n<]*rejected" % kid,
                         "the reject was undone by the other client's save")
        m = third.mark()
        bob.send("alice@localhost/third", "after the reject " + SECRET)
        third.wait_event("received-raw", since=m, timeout=T,
                         pred=lambda e: "?E2E:" in (e.get("text") or ""))
        third.ping()
        time.sleep(1.0)
        self.assertEqual(shown(third, SECRET, since=m), [])


class MarkerSpoofing(Base):
    """Issue 9 item 7: plaintext cannot produce the lock marker."""
    users = ("alice", "bob", "carol")

    def test_third_user_and_injected_plaintext(self):
        alice, bob = self.pair()
        carol = self.raw("carol")
        carol.presence()
        a = alice.mark()
        carol.message(alice.jid, MARK_V + "New IBAN DE00 1111")
        xhtml = ("<html xmlns='http://jabber.org/protocol/xhtml-im'>"
                 "<body xmlns='http://www.w3.org/1999/xhtml'>see below<br/>"
                 "<span style='color:#16569E'><b>bob:</b></span> "
                 + relay.xml_escape(MARK_V) + "New IBAN DE00 2222</body></html>")
        carol.message(alice.jid, "see below " + MARK_V + "New IBAN DE00 2222",
                      extra=xhtml)
        # The server injects plaintext "from Bob", whose key Alice knows.
        self.inject_message(alice, "bob@localhost/test", MARK_V + "New IBAN DE00 3333")
        for n in ("1111", "2222", "3333"):
            got = alice.wait_message(contains="DE00 " + n, since=a, timeout=T)
            self.assertNotIn(LOCK, got["text"])
            self.assertIn("not encrypted", got["text"].lower())
            for tag in ("<span", "<font", "color"):
                self.assertNotIn(tag, got["text"])


class Misbinding(Base):
    """Issue 9 item 8: Mallory republishes Bob's and Alice's keys."""
    users = ("alice", "bob", "mallory")

    def test_keys_republished_by_a_third_user(self):
        alice, bob = self.pair()
        akey = self.alice_key(alice)
        bkey = self.bob_key(alice)
        mallory = self.raw("mallory")
        a, b = alice.mark(), bob.mark()
        mallory.presence(status="hi [e2ee:%s]" % relay.compact_set([bkey, akey]))
        alice.ping()
        time.sleep(1.5)
        # Neither pins the copied keys under Mallory's name.
        for c in (alice, bob):
            st = status_text(c, "mallory@localhost")
            self.assertNotIn("trusted on first use", st, c.name + ": " + st)
        # Bob's envelope to Alice, relayed by Mallory, is not Mallory's word.
        m = bob.mark()
        r = alice.relay.mark()
        bob.send(alice.jid, "for alice only " + SECRET)
        unit = alice.relay.wait_unit(relay.TO_CLIENT, "?E2E:", since=r, timeout=T)
        env = re.search(r"\?E2E:[A-Za-z0-9_-]+", unit.decode()).group(0)
        alice.wait_message(contains=SECRET, who=bob.jid, since=a, timeout=T)
        a2 = alice.mark()
        mallory.message(alice.jid, env, extra=envelope_element(env))
        alice.wait_event("received-raw", since=a2, timeout=T,
                         pred=lambda e: (e.get("from") or "").startswith("mallory"))
        alice.ping()
        time.sleep(1.0)
        bad = [e for e in shown(alice, SECRET, since=a2)]
        self.assertEqual(bad, [], "Bob's words shown as Mallory's")


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
