#!/usr/bin/env python3
"""Real Finch with the plugin, driven through tmux, against a real Prosody.

Alice uses Finch (a prepared user dir: account on the local Prosody, the
plugin in Finch's saved list of loaded plugins); Bob is a headless libpurple
client with the plugin.  Alice opens the conversation from her buddy list,
types with `send-keys`, and the test reads Finch's screen with
`capture-pane`: what she sees is checked there, what Bob got in his client's
events, and what the server relayed in Prosody's stanza log.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# The checks read English text: no installed catalog may translate it.
os.environ["LC_ALL"] = "C.UTF-8"
os.environ.pop("LANGUAGE", None)

P = harness.PLUGIN_ID
T = 25.0
MARK_U = "[\U0001F512 unverified] "
SECRET_A = "finch-secret-6021"
SECRET_B = "bob-secret-9377"
TEXT_AB = "Hallo Bob, hier ist Finch " + SECRET_A
TEXT_BA = "Hi Alice, got it " + SECRET_B

# Finch (GNT) reads cursor keys in the terminal's application mode only.
KEY_DOWN = "\x1bOB"
# Box drawing and scroll bar characters of GNT windows.
FRAME = re.compile("[\u2500-\u257f\u2580-\u259f\u2190-\u2193]")


def screen_text(screen):
    """Finch's screen as one line: window frames removed, wrapped lines
    joined, runs of white space collapsed, so a message that GNT wrapped
    can be searched for as a whole."""
    lines = [FRAME.sub(" ", line).strip() for line in screen.splitlines()]
    return re.sub(r"\s+", " ", " ".join(l for l in lines if l))


def fingerprint_pattern():
    return r"((?:[0-9A-F]{4} ){15}[0-9A-F]{4})"


class FinchTest(unittest.TestCase):
    def setUp(self):
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=("alice", "bob"))
        self.bob = self.h.xmpp_client("bob", plugins=[P], wait=False)
        self.finch = self.h.finch("alice", plugins=[P])
        self.h.wait_started(self.bob, timeout=T)

    # -- Finch helpers -------------------------------------------------------

    def styled_screen(self):
        r = subprocess.run(["tmux", "-L", self.finch.socket, "capture-pane",
                            "-e", "-p", "-t", "main"],
                           stdout=subprocess.PIPE, timeout=10)
        return r.stdout.decode("utf-8", "replace")

    def focused_title(self):
        """GNT draws the focused window's title (between the frame's
        tee characters) on a blue background, the others on black."""
        for line in self.styled_screen().splitlines():
            m = re.search("\u2524(?:\x1b\\[[0-9;]*m)*\x1b\\[44m([^\x1b]+)\x1b",
                          line)
            if m:
                return m.group(1)
        return None

    def focus(self, title, tries=6):
        """Cycle through Finch's windows (Alt+N) until `title` has focus."""
        for _ in range(tries):
            if self.focused_title() == title:
                return
            self.finch.keys("M-n")
            time.sleep(0.4)
        self.fail("Finch: could not focus %r; focused %r\n%s"
                  % (title, self.focused_title(), self.finch.screen()))

    def finch_says(self, line):
        """Type one line into the focused conversation and press Enter."""
        self.finch.type(line)
        self.finch.keys("Enter")

    def wait_screen(self, pattern, what):
        """Until the joined screen text matches the regex `pattern`."""
        text = self.finch.wait_screen(
            lambda s: re.search(pattern, screen_text(s)) is not None,
            timeout=T, what=what)
        return re.search(pattern, screen_text(text))

    def bob_system_text(self, since):
        return "\n".join(e["text"] for e in self.bob.find(since=since,
                                                          event="write")
                         if "SYSTEM" in e["flags"])

    # -- the test ------------------------------------------------------------

    def test_conversation_status_and_fingerprint_in_finch(self):
        alice_jid = self.server.jid("alice")
        # Finch signed on and published its key: Bob's plugin learns it from
        # Alice's status on presence.
        self.bob.wait_buddy_online(alice_jid, timeout=T)
        deadline = time.monotonic() + T
        while "trusted on first use" not in self.bob_status(alice_jid):
            self.assertLess(time.monotonic(), deadline, "Bob never got Alice's key")
            time.sleep(0.3)

        # Alice opens the conversation from her buddy list: Bob is the
        # first row under the "Buddies" group.
        self.finch.wait_screen(lambda s: "Buddy List" in s and "bob" in s,
                               timeout=T, what="buddy list with bob")
        self.focus("Buddy List")
        self.finch.type(KEY_DOWN)
        time.sleep(0.3)
        self.finch.keys("Enter")
        self.finch.wait_screen(lambda s: "bob (alice@localhost/finch" in s,
                               timeout=T, what="conversation window with bob")
        self.focus("bob (alice@localhost/finch -- XMPP)")

        # /e2ee status: Finch knows Bob's device, trusted on first use.
        self.finch_says("/e2ee status")
        m = self.wait_screen(r"Encryption with bob@localhost: policy .*?"
                             r"trusted on first use, not verified "
                             r"fingerprint " + fingerprint_pattern(),
                             "/e2ee status output")
        bob_fp_seen_by_alice = m.group(1)

        # A typed message: marker and plaintext for Alice, decrypted for
        # Bob, an envelope for the server.
        b = self.bob.mark()
        self.finch_says(TEXT_AB)
        self.wait_screen(re.escape("alice@localhost/finch: " + MARK_U + TEXT_AB),
                         "Alice's own message with the encrypted marker")
        got = self.bob.wait_message(MARK_U + TEXT_AB, who=alice_jid, since=b,
                                    timeout=T)
        self.assertIn("RECV", got["flags"])
        self.bob.wait_event("received", text=TEXT_AB, since=b, timeout=T)

        # Bob answers; Finch shows the decrypted reply with the marker.
        self.bob.send(alice_jid, TEXT_BA)
        self.wait_screen(re.escape("bob: " + MARK_U + TEXT_BA),
                         "Bob's reply with the encrypted marker")

        # /e2ee fingerprint: Alice's own and Bob's, as Bob's client knows
        # them.
        self.finch_says("/e2ee fingerprint")
        m = self.wait_screen(r"Your device key for alice@localhost \(prpl-jabber\): "
                             r"device (\S+), fingerprint " + fingerprint_pattern()
                             + r" bob@localhost device \S+: "
                             + fingerprint_pattern(),
                             "/e2ee fingerprint output")
        alice_kid, alice_fp, bob_fp = m.group(1), m.group(2), m.group(3)
        self.assertEqual(bob_fp, bob_fp_seen_by_alice)
        b = self.bob.mark()
        self.assertEqual(self.bob.cmd(alice_jid, "e2ee fingerprint")["status"], "ok")
        bob_view = self.bob_system_text(b)
        self.assertIn("alice@localhost device %s: %s" % (alice_kid[:8], alice_fp),
                      bob_view)
        self.assertRegex(bob_view, r"Your device key for bob@localhost .*"
                         + re.escape(bob_fp))

        # What the server relayed: envelopes from Finch, never the text.
        log = self.server.log_text()
        self.assertRegex(log, r"alice@localhost/finch.*\?E2E:")
        for token in (SECRET_A, SECRET_B, "hier ist Finch", "got it"):
            self.assertNotIn(token, log, "Prosody saw plaintext %r" % token)
        self.assertTrue(self.finch.alive(), "Finch exited")
        self.assertEqual(self.bob.errors(), [])

    def test_key_change_dialog_in_finch(self):
        """A key change opens a request dialog that Finch draws: the
        device, its safety number and the three choices are on screen."""
        alice_jid = self.server.jid("alice")
        self.bob.wait_buddy_online(alice_jid, timeout=T)
        deadline = time.monotonic() + T
        while "trusted on first use" not in self.bob_status(alice_jid):
            self.assertLess(time.monotonic(), deadline, "Bob never got Alice's key")
            time.sleep(0.3)
        self.finch.wait_screen(lambda s: "Buddy List" in s and "bob" in s,
                               timeout=T, what="buddy list with bob")
        # Bob reinstalls: a new key under the same account.
        self.bob.stop()
        shutil.rmtree(os.path.join(self.bob.user_dir, "purple-e2ee"))
        self.bob = self.h.restart(self.bob, plugins=[P], timeout=T)
        # GNT shows the buttons' mnemonics as typed.
        self.wait_screen(r"_Accept .*?_Reject .*?Decide _later", "the dialog's buttons")
        self.focus("purple-e2ee")
        time.sleep(0.5)
        screen = self.finch.screen()
        # The dialog (drawn on top once focused) names the device and shows
        # its whole safety number.
        text = screen_text(screen)
        m = re.search(r"bob@localhost's encryption key has CHANGED Device: (\S{8}) "
                      r"Fingerprint: .*?Safety number: ((?:\d{5} ){11}\d{5})", text)
        self.assertIsNotNone(m, screen)
        path = os.path.join(harness.BUILD_ROOT or os.getcwd(), "screenshots",
                            "finch-key-change-dialog.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(screen)
        # The safety number shown is the one Bob's side computes.
        b = self.bob.mark()
        self.bob.cmd(alice_jid, "e2ee status")
        self.assertIn("safety number " + m.group(2), self.bob_system_text(b))
        self.assertTrue(self.finch.alive(), "Finch exited")

    def bob_status(self, buddy):
        b = self.bob.mark()
        self.bob.cmd(buddy, "e2ee status")
        return self.bob_system_text(b)


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
