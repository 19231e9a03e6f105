#!/usr/bin/env python3
"""The plugin on XMPP: real libpurple clients against a real Prosody.

Each test starts its own Prosody on 127.0.0.1 and headless clients that load
the built plugin, and checks what users see (conversation writes), what the
server and the wire see (Prosody's stanza log, a loopback tap) and what the
debug log holds.
"""

import base64
import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = harness.PLUGIN_ID
T = 25.0  # bounded waits, generous because the machine may be busy
MARK_U = "[\U0001F512 unverified] "
MARK_V = "[\U0001F512 verified] "
MARK_PLAIN = "[not encrypted] "
PROFILE_BEGIN = "-----BEGIN PURPLE-E2EE KEYS-----"
STATUS_TAG = "[e2ee:"

# Tokens that must never appear outside the two clients' conversations.
SECRET_A = "alpha-secret-4711"
SECRET_B = "bravo-secret-0815"
TEXT_AB = "Grüße aus Zürich <b>fett</b> ✓ 日本語 🙂 " + SECRET_A
TEXT_BA = "¡Hola! ünïcödé <i>schräg</i> \u00e9 " + SECRET_B


def is_system(e):
    return "SYSTEM" in e.get("flags", ())


def wait_system(client, contains, since=0, timeout=T, conv=None):
    """A system line (plugin notice) whose text contains `contains`."""
    def ok(e):
        if not is_system(e) or contains not in (e.get("text") or ""):
            return False
        return conv is None or harness.bare(e.get("conv")) == harness.bare(conv)
    return client.wait_for(pred=ok, since=since, timeout=timeout,
                           event="write", what="system line with %r" % contains)


def recv_texts(client, since=0):
    return [e["text"] for e in client.writes(since=since, flag="RECV")]


def wait_key(client, buddy, timeout=T, trust="trusted on first use"):
    """Poll `/e2ee status` until `client` holds a key of `buddy` in state
    `trust`; returns the status text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        since = client.mark()
        client.cmd(buddy, "e2ee status")
        lines = [e["text"] for e in client.find(since=since, event="write")
                 if is_system(e)]
        text = "\n".join(lines)
        if trust in text and "safety number" in text:
            return text
        time.sleep(0.3)
    raise harness.HarnessError("%s: no %r key of %s after %.0fs; last status:\n%s"
                               % (client.name, trust, buddy, timeout, text))


def seed_vcard(server, user, desc, fn):
    """Store a vCard for `user` in Prosody's internal storage, as mod_vcard
    would after the user saved it (Prosody reads it on each request)."""
    def lua(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    folder = os.path.join(server.data_dir, server.domain, "vcard")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, user + ".dat")
    with open(path, "w") as f:
        f.write('return {\n\t["name"] = "vCard";\n'
                '\t["attr"] = { ["xmlns"] = "vcard-temp"; };\n'
                '\t[1] = { ["name"] = "FN"; ["attr"] = { }; [1] = %s; };\n'
                '\t[2] = { ["name"] = "DESC"; ["attr"] = { }; [1] = %s; };\n'
                '};\n' % (lua(fn), lua(desc)))
    if server.uid is not None:
        for p in (os.path.join(server.data_dir, server.domain), folder, path):
            os.chown(p, server.uid, server.gid)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


def tamper(envelope):
    """The armored single-recipient v2 envelope with its message number N
    raised by 100 (bytes 81..84: envelope byte 0, then N at offset 80 of
    the ratchet header, PROTOCOL.md section 5), so it is not a duplicate of
    a message already received (and within the skip bound), and
    authentication must fail."""
    prefix, body = envelope[:5], envelope[5:]
    data = bytearray(b64url_decode(body))
    assert data[0] & 0x01 == 0, "single-recipient envelope expected"
    n = int.from_bytes(data[81:85], "big")
    data[81:85] = (n + 100).to_bytes(4, "big")
    return prefix + b64url_encode(bytes(data))


def recipients(envelope):
    """Number of recipient devices in an armored v2 envelope: 1 for the
    single layout, else byte 1 (PROTOCOL.md section 5)."""
    data = b64url_decode(envelope[5:])
    return 1 if data[0] & 0x01 == 0 else data[1]


def safety_number(text):
    m = re.search(r"safety number ((?:\d{5} ){11}\d{5})", text)
    return m.group(1) if m else None


class XmppBase(unittest.TestCase):
    users = ("alice", "bob")

    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=self.users)

    def start(self, plain=(), tap=(), **kw):
        clients = []
        for u in self.users:
            plugins = [] if u in plain else [P]
            clients.append(self.h.xmpp_client(u, plugins=plugins, tap=u in tap,
                                              wait=False, **kw))
        self.h.wait_started(*clients, timeout=T)
        return clients

    def pair(self, tap=()):
        alice, bob = self.start(tap=tap)[:2]
        wait_key(alice, bob.jid)
        wait_key(bob, alice.jid)
        return alice, bob

    def converse(self, alice, bob, text, mark=MARK_U):
        """alice sends `text`; bob must show exactly mark + text."""
        m = bob.mark()
        a = alice.mark()
        alice.send(bob.jid, text)
        raw = alice.wait_event("sent-raw", since=a, timeout=T)
        self.assertTrue(raw["text"].startswith("?E2E:"), raw["text"][:80])
        got = bob.wait_message(mark + text, who=alice.jid, since=m, timeout=T)
        return raw["text"], got

    def assert_no_plaintext(self, where, blob, *tokens):
        for t in tokens:
            self.assertNotIn(t, blob, "%s holds plaintext %r" % (where, t))

    def assert_clean(self, *clients):
        for c in clients:
            self.assertEqual(c.errors(), [], "%s: errors or criticals" % c.name)


class FirstContact(XmppBase):
    def test_discovery_conversation_and_server_view(self):
        alice, bob = self.start(tap=("alice",))
        # Keys are learned from the status tag on presence: no window opens.
        wait_key(alice, bob.jid)
        wait_key(bob, alice.jid)
        for c in (alice, bob):
            popups = c.find(pred=lambda e: e["event"] in ("request", "userinfo"))
            self.assertEqual(popups, [], "%s: unexpected dialogs" % c.name)
        st = bob.get_status(alice.jid)
        self.assertIn(STATUS_TAG, st["message"] or "")

        raw_ab, got = self.converse(alice, bob, TEXT_AB)
        self.assertIn("RECV", got["flags"])
        # Alice's own window shows her plaintext with the marker.
        alice.wait_message(MARK_U + TEXT_AB, flag="SEND", timeout=T)
        # Bob's client decrypted it before display: the signal after ours
        # already carries the plaintext.
        bob.wait_event("received", text=TEXT_AB, timeout=T)

        m = alice.mark()
        bob.send(alice.jid, TEXT_BA)
        alice.wait_message(MARK_U + TEXT_BA, who=bob.jid, since=m, timeout=T)
        self.assertEqual(recv_texts(bob).count(MARK_U + TEXT_AB), 1)
        self.assertEqual(recv_texts(alice).count(MARK_U + TEXT_BA), 1)

        # The server and the wire saw only envelopes.
        log = self.server.log_text()
        self.assertIn(raw_ab, log)
        self.assert_no_plaintext("prosody log", log, SECRET_A, SECRET_B, "Zürich")
        wire = alice.tap.text()
        self.assertIn(raw_ab, wire)
        self.assert_no_plaintext("wire", wire, SECRET_A, SECRET_B, "schräg")
        # And libpurple's debug log (which shows every stanza) too.
        for c in (alice, bob):
            dbg = c.debug_log()
            self.assertIn("purple-e2ee", dbg)
            self.assert_no_plaintext("%s debug log" % c.name, dbg,
                                     SECRET_A, SECRET_B, "Zürich", "schräg")
        self.assert_clean(alice, bob)

    def test_profile_block_kept_and_withdrawn(self):
        own = "I like green tea and long walks."
        seed_vcard(self.server, "alice", own, "Alice Example")
        alice, bob = self.pair()
        info = bob.get_info(alice.jid, timeout=T,
                            pred=lambda e: PROFILE_BEGIN in (e.get("text") or ""))
        # Our block is added; the user's own profile text and fields stay.
        self.assertIn(PROFILE_BEGIN, info["text"])
        self.assertIn(own, info["text"])
        self.assertIn("Alice Example", info["text"])

        # Disabling the plugin withdraws the status tag and the profile block.
        m = bob.mark()
        alice.unload_plugin()
        bob.wait_buddy_status(alice.jid, since=m, timeout=T,
                              pred=lambda e: STATUS_TAG not in (e.get("message") or ""))
        info = bob.get_info(alice.jid, timeout=T,
                            pred=lambda e: PROFILE_BEGIN not in (e.get("text") or ""))
        self.assertNotIn(PROFILE_BEGIN, info["text"])
        self.assertIn(own, info["text"])

        # Loading it again publishes the same key (no new identity).
        m = bob.mark()
        alice.load_plugin()
        bob.wait_buddy_status(alice.jid, since=m, timeout=T,
                              pred=lambda e: STATUS_TAG in (e.get("message") or ""))
        time.sleep(0.5)
        warnings = [e for e in bob.find(since=m, event="write")
                    if is_system(e) and ("CHANGED" in e["text"] or "NEW DEVICE" in e["text"])]
        self.assertEqual(warnings, [])
        self.converse(alice, bob, "after reload " + SECRET_A)

    def test_status_text_of_the_user_is_kept(self):
        alice, bob = self.pair()
        m = bob.mark()
        alice.set_status("out for lunch")
        ev = bob.wait_buddy_status(
            alice.jid, since=m, timeout=T,
            pred=lambda e: (e.get("message") or "").startswith("out for lunch")
            and STATUS_TAG in e.get("message"))
        self.assertTrue(ev["online"])


class Devices(XmppBase):
    def test_second_installation_reads_the_conversation(self):
        alice, bob = self.pair()
        self.converse(alice, bob, "before the second device")

        # Bob signs on from a second installation (own user dir, own key).
        m = alice.mark()
        bob2 = self.h.xmpp_client("bob", resource="work", name="bob2",
                                  plugins=[P], timeout=T)
        line = wait_system(alice, "NEW DEVICE", since=m, conv=bob.jid)
        self.assertNotIn("CHANGED", line["text"])
        # Not used before Alice decides.
        status = wait_key(alice, bob.jid, trust="awaiting your decision")
        self.assertIn("trusted on first use", status)

        res = alice.cmd(bob.jid, "e2ee trust")
        self.assertEqual(res["status"], "ok")
        wait_system(alice, "Accepted", since=m)

        # A fresh conversation window goes to the bare JID: both devices.
        alice.close_conversation(bob.jid)
        m1, m2 = bob.mark(), bob2.mark()
        text = "to both of your devices " + SECRET_A
        alice.send(bob.jid, text)
        bob.wait_message(MARK_U + text, who=alice.jid, since=m1, timeout=T)
        bob2.wait_message(MARK_U + text, who=alice.jid, since=m2, timeout=T)

        # And the new device's own messages are readable for Alice.
        m = alice.mark()
        bob2.send(alice.jid, "from the second device " + SECRET_B)
        alice.wait_message(MARK_U + "from the second device " + SECRET_B,
                           since=m, timeout=T)
        self.assert_clean(alice, bob, bob2)

    def test_new_device_messages_held_back_until_trusted(self):
        alice, bob = self.pair()
        m = alice.mark()
        bob2 = self.h.xmpp_client("bob", resource="work", name="bob2",
                                  plugins=[P], timeout=T)
        line = wait_system(alice, "NEW DEVICE", since=m, conv=bob.jid)
        kid = re.search(r"device (\S{8}),", line["text"]).group(1)
        wait_key(bob2, alice.jid)
        m = alice.mark()
        text = "from a device you never accepted " + SECRET_B
        bob2.send(alice.jid, text)
        held = wait_system(alice, "held back", since=m, conv=bob.jid)
        self.assertIn(kid, held["text"])
        self.assertIn("/e2ee trust " + kid, held["text"])
        alice.ping()
        self.assertEqual([t for t in recv_texts(alice, since=m) if SECRET_B in t], [])
        # Accepted: the held message is shown, marked.
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust " + kid)["status"], "ok")
        got = alice.wait_message(since=m, timeout=T, contains=SECRET_B)
        self.assertTrue(got["text"].startswith(MARK_U), got["text"])
        self.assert_clean(alice, bob, bob2)

    def test_own_new_device_is_pending_and_gets_nothing(self):
        alice, bob = self.pair()
        env, _ = self.converse(alice, bob, "before")
        self.assertEqual(recipients(env), 1)
        # A device nobody confirmed signs on as Alice (the server could
        # do the same with a presence of its own).
        m = alice.mark()
        evil = self.h.xmpp_client("alice", resource="evil", name="evil",
                                  plugins=[P], timeout=T)
        alice.wait_event("notify", since=m, timeout=T,
                         pred=lambda e: "claims to be your account"
                         in (e.get("primary") or ""))
        line = wait_system(alice, "claims to be YOUR account", since=m, conv=bob.jid)
        kid = re.search(r"device (\S{8}),", line["text"]).group(1)
        st = wait_key(alice, bob.jid)
        self.assertRegex(st, r"Your other device %s: PENDING" % re.escape(kid))
        # It gets nothing: Alice's messages are for Bob's device only, and
        # the marker does not change.
        env, _ = self.converse(alice, bob, "while it is pending " + SECRET_A)
        self.assertEqual(recipients(env), 1)
        # Confirmed from this existing device, it gets a copy.
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee own accept " + kid)["status"], "ok")
        wait_system(alice, "Accepted as one of your own devices", since=m)
        env, _ = self.converse(alice, bob, "after accepting it")
        self.assertEqual(recipients(env), 2)
        self.assert_clean(alice, bob, evil)

    def test_key_change_warns_and_blocks(self):
        alice, bob = self.pair()
        self.converse(alice, bob, "first key")

        # Bob reinstalls: same account, new identity key.
        bob.stop()
        shutil.rmtree(os.path.join(bob.user_dir, "purple-e2ee"))
        m = alice.mark()
        bob = self.h.restart(bob, plugins=[P], timeout=T)
        wait_system(alice, "CHANGED", since=m, conv=bob.jid)

        # Sending is blocked: nothing reaches the wire or Bob.
        a, b = alice.mark(), bob.mark()
        alice.send(bob.jid, "must not leave " + SECRET_A)
        wait_system(alice, "NOT sent", since=a)
        alice.ping()
        self.assertEqual(alice.find(since=a, event="sent-raw"), [])
        time.sleep(1.0)
        self.assertEqual([t for t in recv_texts(bob, since=b) if SECRET_A in t], [])
        self.assertNotIn("must not leave", self.server.log_text())

        # After the user accepts the new key, messages flow again.
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust")["status"], "ok")
        wait_key(bob, alice.jid)
        self.converse(alice, bob, "new key accepted")
        self.assert_clean(alice, bob)


class Offline(XmppBase):
    def test_offline_buddy_gets_encrypted_message(self):
        alice, bob = self.pair()
        m = alice.mark()
        bob.signoff()
        alice.wait_for(since=m, timeout=T, what="bob offline",
                       pred=lambda e: e["event"] == "buddy-signed-off"
                       and harness.bare(e.get("who")) == bob.jid)
        a = alice.mark()
        text = "while you were away " + SECRET_A
        alice.send(bob.jid, text)
        raw = alice.wait_event("sent-raw", since=a, timeout=T)
        self.assertTrue(raw["text"].startswith("?E2E:"))
        b = bob.mark()
        bob.signon(timeout=T)
        bob.wait_message(MARK_U + text, who=alice.jid, since=b, timeout=T)
        self.assertNotIn(SECRET_A, self.server.log_text())
        # Prosody's offline store holds only the envelope.
        store = ""
        for root, _, files in os.walk(self.server.data_dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    store += fh.read().decode("utf-8", "replace")
        self.assertNotIn(SECRET_A, store)


class Rejections(XmppBase):
    def test_tampered_replayed_and_downgrade(self):
        alice, bob = self.pair()
        env, _ = self.converse(alice, bob, "original " + SECRET_A)

        # A replay of the same envelope is dropped without a word: nothing
        # is shown, no line is written.
        b = bob.mark()
        alice.raw(bob.jid, env)
        # The next message arrives after it (one stream, in order).
        self.converse(alice, bob, "next one")
        self.assertEqual([e for e in bob.writes(since=b)
                          if "original" in (e.get("text") or "")
                          or "replay" in (e.get("text") or "")], [])

        # Changed in transit: authentication fails.
        b = bob.mark()
        alice.raw(bob.jid, tamper(env))
        wait_system(bob, "altered", since=b)

        bob.ping()
        for e in bob.writes(flag="RECV"):
            self.assertFalse(e["text"].lstrip().startswith("?E2E:"),
                             "wire text shown as a message")
        self.assertEqual(recv_texts(bob).count(MARK_U + "original " + SECRET_A), 1)

        # Plaintext from a buddy who encrypted before is marked (Alice's
        # own plugin lets it out only once she turned encryption off).
        self.assertEqual(alice.cmd(bob.jid, "e2ee off")["status"], "ok")
        b = bob.mark()
        alice.raw(bob.jid, "plain words")
        bob.wait_message(MARK_PLAIN + "plain words", who=alice.jid, since=b,
                         timeout=T)
        self.assert_clean(alice, bob)


class MarkerSpoofing(XmppBase):
    users = ("alice", "bob", "carol")

    def test_plaintext_cannot_show_the_lock(self):
        alice, bob, carol = self.start(plain=("carol",))
        wait_key(alice, bob.jid)

        def shown(sender, text, escape=False):
            m = alice.mark()
            sender.send(alice.jid, text, escape=escape)
            return alice.wait_for(since=m, timeout=T, event="write",
                                  pred=lambda e: "RECV" in e["flags"]
                                  and "IBAN" in e["text"])["text"]

        # A third user without the plugin types the marker herself.
        got = shown(carol, MARK_V + "New IBAN DE00 1234")
        self.assertTrue(got.startswith(MARK_PLAIN), got)
        self.assertNotIn("\U0001F512", got)
        # XHTML-IM: a line break and colours that would draw a fake line.
        fake = ("see below<br>(21:07:25) <font color='#16569E'><b>bob:</b></font> "
                + MARK_V + "New IBAN DE99 6666")
        got = shown(carol, fake)
        self.assertNotIn("\U0001F512", got)
        for tag in ("<font", "<b>", "<span", "color"):
            self.assertNotIn(tag, got)
        lines = re.split(r"<br\s*/?>", got, flags=re.I)
        self.assertGreaterEqual(len(lines), 2)
        for line in lines:
            self.assertTrue(line.startswith(MARK_PLAIN), got)
        # Bob, whose key is known but who sends plaintext, is flagged too.
        self.assertEqual(bob.cmd(alice.jid, "e2ee off")["status"], "ok")
        got = shown(bob, MARK_V + "New IBAN from bob")
        self.assertTrue(got.startswith(MARK_PLAIN), got)
        self.assertNotIn("\U0001F512", got)
        self.assert_clean(alice, bob, carol)


class RejectFailsClosed(XmppBase):
    def test_rejecting_the_only_device_blocks_and_names_the_way_out(self):
        alice, bob = self.pair()
        kid = re.search(r"device (\S{8}): trusted on first use",
                        wait_key(alice, bob.jid)).group(1)
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee reject " + kid)["status"], "ok")
        wait_system(alice, "nothing is sent to them until you accept one", since=m)
        a, b = alice.mark(), bob.mark()
        alice.send(bob.jid, "after the reject " + SECRET_A)
        wait_system(alice, "NOT sent", since=a)
        a = alice.mark()
        alice.raw(bob.jid, "auto-reply after the reject " + SECRET_B)
        wait_system(alice, "NOT sent", since=a)
        # A bare /e2ee trust says which device is rejected and how to
        # accept it again.
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust")["status"], "ok")
        line = wait_system(alice, "Rejected: " + kid, since=m)
        self.assertIn("/e2ee trust DEVICE", line["text"])
        self.assertEqual(alice.cmd(bob.jid, "e2ee trust " + kid)["status"], "ok")
        self.converse(alice, bob, "accepted again")
        self.assertEqual([t for t in recv_texts(bob, since=b)
                          if SECRET_A in t or SECRET_B in t], [])
        self.assert_no_plaintext("Prosody's log", self.server.log_text(),
                                 SECRET_A, SECRET_B)
        self.assert_clean(alice, bob)


class LastStep(XmppBase):
    def test_auto_reply_path_cannot_send_plaintext(self):
        alice, bob = self.pair()
        self.assertEqual(alice.cmd(bob.jid, "e2ee require")["status"], "ok")
        # serv_send_im is what auto-replies and other plugins use: it never
        # passes sending-im-msg, only the outgoing stanza hook.
        a, b = alice.mark(), bob.mark()
        alice.raw(bob.jid, "auto-reply " + SECRET_A)
        wait_system(alice, "NOT sent", since=a, conv=bob.jid)
        # The same with the default policy: Bob's key is known.
        self.assertEqual(alice.cmd(bob.jid, "e2ee on")["status"], "ok")
        a = alice.mark()
        alice.raw(bob.jid, "<b>other plugin</b> " + SECRET_B)
        wait_system(alice, "NOT sent", since=a, conv=bob.jid)
        # Encrypted messages still pass the same hook.
        self.converse(alice, bob, "still encrypted")
        self.assert_no_plaintext("Prosody's log", self.server.log_text(),
                                 SECRET_A, SECRET_B)
        self.assertEqual([t for t in recv_texts(bob, since=b)
                          if SECRET_A in t or SECRET_B in t], [])
        self.assert_clean(alice, bob)


class PolicyAndCommands(XmppBase):
    users = ("alice", "bob", "carol")

    def test_fail_closed_verify_and_coexistence(self):
        alice, bob, carol = self.start(plain=("carol",))
        wait_key(alice, bob.jid)
        wait_key(bob, alice.jid)

        # Carol has no plugin: requiring encryption never leaks plaintext.
        c = carol.mark()
        self.assertEqual(alice.cmd(carol.jid, "e2ee require")["status"], "ok")
        a = alice.mark()
        alice.send(carol.jid, "for carol only " + SECRET_A)
        wait_system(alice, "NOT sent", since=a)
        # She gets one readable line explaining the key offer instead.
        offer = carol.wait_for(since=c, timeout=T, event="write",
                               pred=lambda e: "RECV" in e["flags"])
        self.assertTrue(offer["text"].startswith("?E2K:"), offer["text"][:60])
        self.assertRegex(offer["text"], r"[a-z]+ [a-z]+ [a-z]+")
        time.sleep(0.5)
        self.assertEqual([t for t in recv_texts(carol) if SECRET_A in t], [])
        self.assertEqual(len(recv_texts(carol)), 1)

        # /e2ee off lets plaintext go, as the user asked.
        self.assertEqual(alice.cmd(carol.jid, "e2ee off")["status"], "ok")
        c = carol.mark()
        alice.send(carol.jid, "hello carol")
        carol.wait_message("hello carol", since=c, timeout=T)

        # Safety numbers agree on both sides; verifying changes the marker.
        sa = safety_number(wait_key(alice, bob.jid))
        sb = safety_number(wait_key(bob, alice.jid))
        self.assertIsNotNone(sa)
        self.assertEqual(sa, sb)
        self.assertEqual(bob.cmd(alice.jid, "e2ee verify all")["status"], "ok")
        wait_key(bob, alice.jid, trust="verified")
        m = bob.mark()
        alice.send(bob.jid, "verified now")
        bob.wait_message(MARK_V + "verified now", since=m, timeout=T)

        # Another plugin's message (a bare pidgin-otr query) passes the last
        # step; with no OTR plugin here to read it, it is shown as the
        # plaintext it is.  (Text after the query is words: LastStepArmor.)
        m = alice.mark()
        bob.raw(alice.jid, "?OTRv23?")
        alice.wait_message(MARK_PLAIN + "?OTRv23?", since=m, timeout=T)

        # Plugin actions (Tools / Plugins menu) show keys without dialogs
        # that need answers.
        m = alice.mark()
        alice.action("Show my fingerprints")
        ev = alice.wait_event("notify", since=m, type="formatted", timeout=T)
        self.assertIn("alice@localhost", ev["text"])
        self.assertRegex(ev["text"], r"fingerprint (?:[0-9A-F]{4} ){15}[0-9A-F]{4}")
        m = alice.mark()
        alice.action("Manage known keys")
        ev = alice.wait_event("notify", since=m, type="formatted", timeout=T)
        self.assertIn("bob@localhost", ev["text"])
        self.assertIn("carol@localhost", ev["text"])

        # The marker is a preference.
        alice.set_pref("/plugins/core/%s/marker" % P, "E2E")
        m = alice.mark()
        bob.send(alice.jid, "custom marker")
        alice.wait_message("[E2E unverified] custom marker", since=m, timeout=T)

        # Help and unknown subcommands.
        m = alice.mark()
        self.assertEqual(alice.cmd(bob.jid, "e2ee help")["status"], "ok")
        wait_system(alice, "/e2ee verify", since=m)
        self.assertEqual(alice.cmd(bob.jid, "e2ee frobnicate")["status"], "failed")
        self.assert_clean(alice, bob, carol)


class KeyringProtection(XmppBase):
    def test_passphrase_and_wrong_passphrase(self):
        alice, bob = self.pair()
        folder = os.path.join(alice.user_dir, "purple-e2ee")
        path = os.path.join(folder, "keyring.sqlite")
        self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(path).st_mode & 0o077, 0)

        # Protect it (the passphrase is asked through libpurple's request API).
        pw = "correct horse battery"
        alice = self.h.restart(alice, plugins=[P], passphrase=pw, timeout=T)
        m = alice.mark()
        alice.action("Set keyring passphrase...")
        alice.wait_for(since=m, timeout=T, event="notify",
                       pred=lambda e: "protected" in (e.get("primary") or ""))
        alice.stop()
        with open(path, "rb") as f:
            sealed = f.read()
        self.assertRegex(sealed.decode("utf-8", "replace"), "argon2id|scrypt")

        # A wrong passphrase: a clear notice, nothing sent, nothing destroyed.
        alice = self.h.restart(alice, plugins=[P], passphrase="wrong", timeout=T)
        alice.wait_for(timeout=T, event="notify",
                       pred=lambda e: e.get("type") == "error"
                       and "locked" in (e.get("primary") or ""))
        a, b = alice.mark(), bob.mark()
        alice.send(bob.jid, "while locked " + SECRET_A)
        wait_system(alice, "NOT sent", since=a)
        alice.ping()
        self.assertEqual(alice.find(since=a, event="sent-raw"), [])
        alice.stop()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), sealed)
        self.assertEqual([t for t in recv_texts(bob, since=b) if SECRET_A in t], [])

        # The right one opens the same identity: Bob sees no key change.
        b = bob.mark()
        alice = self.h.restart(alice, plugins=[P], passphrase=pw, timeout=T)
        wait_key(alice, bob.jid)
        self.converse(alice, bob, "unlocked again " + SECRET_A)
        changes = [e for e in bob.find(since=b, event="write")
                   if is_system(e) and ("CHANGED" in e["text"] or "NEW DEVICE" in e["text"])]
        self.assertEqual(changes, [])
        self.assert_no_plaintext("keyring", sealed.decode("utf-8", "replace"), SECRET_A)


def im_logs(client):
    parts = []
    for root, _, files in os.walk(os.path.join(client.user_dir, "logs")):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                parts.append(fh.read().decode("utf-8", "replace"))
    return "\n".join(parts)


class Privacy(XmppBase):
    def test_option_not_to_log_encrypted_conversations(self):
        alice, bob = self.start()
        for c in (alice, bob):
            c.set_pref("/purple/logging/log_ims", True)
            c.set_pref("/purple/logging/format", "txt")
        bob.set_pref("/plugins/core/%s/log_encrypted" % P, False)
        wait_key(alice, bob.jid)
        wait_key(bob, alice.jid)

        self.converse(alice, bob, "logged only by alice " + SECRET_A)
        m = alice.mark()
        bob.send(alice.jid, "reply " + SECRET_B)
        alice.wait_message(MARK_U + "reply " + SECRET_B, since=m, timeout=T)
        # Alice follows libpurple's logging setting (on); Bob opted out.
        deadline = time.monotonic() + T
        while SECRET_B not in im_logs(alice) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn(SECRET_A, im_logs(alice))
        self.assertIn(SECRET_B, im_logs(alice))
        self.assertNotIn(SECRET_A, im_logs(bob))
        self.assertNotIn(SECRET_B, im_logs(bob))


class LastStepArmor(XmppBase):
    """Only text that decodes as our armor passes the last step: a prefix
    alone is words like any other."""

    def test_prefixes_and_markup_do_not_pass(self):
        alice, bob = self.pair(tap=("alice",))
        fake_b64 = base64.urlsafe_b64encode(SECRET_B.encode()).decode().rstrip("=")
        lies = (
            "?OTR " + SECRET_A,                    # pidgin-otr is not loaded
            "?OTRv23? Bob wants OTR " + SECRET_A,  # a query with words after it
            "?OTR:" + SECRET_A + ".",
            "?E2E: " + SECRET_A,                   # our prefix, then words
            "?E2E:" + fake_b64,                    # base64url, not an envelope
            "?E2K: " + SECRET_A,
            "?E2A:" + fake_b64 + " " + SECRET_A,
            "?E2F:0000beef:1/2:?E2E: " + SECRET_A,
            "?E2F:0000beef:2/2:" + SECRET_A + " words",
            "  ?E2E:" + SECRET_A.replace("-", " "),
            "<b>?E2E:</b>" + SECRET_A,
        )
        b = bob.mark()
        for policy in ("require", "on"):
            self.assertEqual(alice.cmd(bob.jid, "e2ee " + policy)["status"], "ok")
            for text in lies:
                a = alice.mark()
                alice.raw(bob.jid, text)
                wait_system(alice, "NOT sent", since=a, conv=bob.jid)
        # Our own armor still passes the same hook.
        self.converse(alice, bob, "still encrypted")
        alice.ping()
        self.assert_no_plaintext("the wire", alice.tap.text(), SECRET_A, SECRET_B)
        self.assert_no_plaintext("Prosody's log", self.server.log_text(),
                                 SECRET_A, SECRET_B)
        self.assertEqual([t for t in recv_texts(bob, since=b)
                          if SECRET_A in t or SECRET_B in t], [])
        self.assert_clean(alice, bob)


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
