#!/usr/bin/env python3
"""Real Pidgin with the plugin, on a private Xvfb, against a real Prosody.

Alice uses Pidgin (prepared user dir: account on the local Prosody, the
plugin in Pidgin's saved list of loaded plugins, text logs on); Bob is a
headless libpurple client with the plugin.  Bob writes first, so Pidgin opens
the conversation window by itself; Alice's answers are typed into that window
with xdotool.  The exchange is checked in Pidgin's conversation log, in Bob's
client and in Prosody's stanza log; a screenshot of the screen is kept under
the build folder (screenshots/pidgin-conversation.png) for people to look at.
"""

import os
import re
import shutil
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
MARK_V = "[\U0001F512 verified] "
SECRET_A = "pidgin-secret-4242"
SECRET_B = "bob-secret-1717"
TEXT_BA = "Hi Alice, this is Bob " + SECRET_B
TEXT_AB = "Hello Bob, Pidgin here " + SECRET_A
TEXT_BA2 = "Now you have verified me"


def screenshot_path():
    root = harness.BUILD_ROOT or os.getcwd()
    return os.path.join(root, "screenshots", "pidgin-conversation.png")


class PidginTest(unittest.TestCase):
    def setUp(self):
        if harness.which("xdotool") is None or harness.which("import") is None:
            self.fail("xdotool and ImageMagick's import are needed "
                      "(scripts/install-deps.sh installs them)")
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.server = self.h.prosody(users=("alice", "bob"))
        self.bob = self.h.xmpp_client("bob", plugins=[P], wait=False)
        self.pidgin = self.h.pidgin("alice", plugins=[P], own_display=True)
        self.h.wait_started(self.bob, timeout=T)

    def bob_status(self, buddy):
        b = self.bob.mark()
        self.bob.cmd(buddy, "e2ee status")
        return "\n".join(e["text"] for e in self.bob.find(since=b, event="write")
                         if "SYSTEM" in e["flags"])

    def wait_logged(self, line, what):
        """Until Pidgin's conversation log holds `line` (as a whole line)."""
        pattern = re.compile(r"^\(\d\d:\d\d:\d\d\) " + re.escape(line) + "$",
                             re.M)
        return self.pidgin.wait_log(lambda t: pattern.search(t) is not None,
                                    timeout=T, what=what)

    def test_encrypted_exchange_in_pidgin(self):
        alice_jid = self.server.jid("alice")
        # Pidgin signed on and published its key in its status.
        self.bob.wait_buddy_online(alice_jid, timeout=T)
        deadline = time.monotonic() + T
        while "trusted on first use" not in self.bob_status(alice_jid):
            self.assertLess(time.monotonic(), deadline, "Bob never got Alice's key")
            time.sleep(0.3)
        self.pidgin.wait_window("^Buddy List$", timeout=T)

        # Bob writes first: Pidgin opens the window and shows the text
        # decrypted, with the marker (its log records what it displayed).
        a = self.bob.mark()
        self.bob.send(alice_jid, TEXT_BA)
        raw = self.bob.wait_event("sent-raw", since=a, timeout=T)
        self.assertTrue(raw["text"].startswith("?E2E:"), raw["text"][:60])
        # The title carries the encryption state (see test_key_change_dialog).
        window = self.pidgin.wait_window(r"^bob( \[E2EE: .*\])?$", timeout=T)
        self.wait_logged("bob: " + MARK_U + TEXT_BA, "Bob's message, decrypted")
        # A larger window makes a readable screenshot.
        self.pidgin.x.run("xdotool", "windowsize", window, "720", "520")

        # Alice answers by typing into the conversation window.
        b = self.bob.mark()
        self.pidgin.type_into(window, TEXT_AB)
        got = self.bob.wait_message(MARK_U + TEXT_AB, who=alice_jid, since=b,
                                    timeout=T)
        self.assertIn("RECV", got["flags"])
        self.bob.wait_event("received", text=TEXT_AB, since=b, timeout=T)
        self.wait_logged("alice@localhost/pidgin: " + MARK_U + TEXT_AB,
                         "Alice's answer, marked as encrypted")

        # Alice verifies Bob in Pidgin; Bob's next message is shown verified.
        self.pidgin.type_into(window, "/e2ee verify all")
        time.sleep(0.5)
        b = self.bob.mark()
        self.bob.send(alice_jid, TEXT_BA2)
        self.wait_logged("bob: " + MARK_V + TEXT_BA2,
                         "Bob's message after verification")
        time.sleep(0.5)  # let Pidgin draw it
        shot = self.pidgin.screenshot(screenshot_path(), window)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(shot), 5000)

        # Exactly one copy of each message on each side.
        logs = self.pidgin.conversation_logs()
        self.assertEqual(logs.count(TEXT_BA), 1)
        self.assertEqual(logs.count(TEXT_AB), 1)
        self.assertEqual([e["text"] for e in self.bob.writes(flag="RECV")],
                         [MARK_U + TEXT_AB])

        # The server relayed envelopes, in both directions, never the text.
        log = self.server.log_text()
        self.assertRegex(log, r"alice@localhost/pidgin.*\?E2E:")
        self.assertIn(raw["text"], log)
        for token in (SECRET_A, SECRET_B, "Pidgin here", "this is Bob",
                      "verified me"):
            self.assertNotIn(token, log, "Prosody saw plaintext %r" % token)
            self.assertNotIn(token, self.pidgin.debug_log(),
                             "Pidgin's debug log holds plaintext %r" % token)
        self.assertTrue(self.pidgin.alive(), "Pidgin exited")
        self.assertEqual(self.bob.errors(), [])

    def test_key_change_dialog_and_title(self):
        """A key change opens a dialog naming the device and its safety
        number; the conversation title, which no message text can reach,
        shows the state; "Accept" in the dialog accepts the new key."""
        alice_jid = self.server.jid("alice")
        self.bob.wait_buddy_online(alice_jid, timeout=T)
        deadline = time.monotonic() + T
        while "trusted on first use" not in self.bob_status(alice_jid):
            self.assertLess(time.monotonic(), deadline, "Bob never got Alice's key")
            time.sleep(0.3)
        self.pidgin.wait_window("^Buddy List$", timeout=T)
        self.bob.send(alice_jid, TEXT_BA)
        window = self.pidgin.wait_window(r"^bob \[E2EE: encrypted, not verified\]$",
                                         timeout=T)
        self.pidgin.x.run("xdotool", "windowsize", window, "720", "520")
        # A message text claiming the state stays in the message area.
        self.bob.send(alice_jid, "bob [E2EE: encrypted, verified]")
        time.sleep(0.5)
        self.assertEqual(self.pidgin.windows(r"E2EE: encrypted, verified"), [])
        shot = self.pidgin.screenshot(os.path.join(
            os.path.dirname(screenshot_path()), "pidgin-conversation-indicator.png"),
            window)
        self.assertGreater(os.path.getsize(shot), 5000)

        # Bob reinstalls: a new key under the same account.
        self.bob.stop()
        shutil.rmtree(os.path.join(self.bob.user_dir, "purple-e2ee"))
        self.bob = self.h.restart(self.bob, plugins=[P], timeout=T)
        dialog = self.pidgin.wait_window("^purple-e2ee$", timeout=T)
        self.pidgin.wait_window(r"^bob \[E2EE: KEY CHANGED: sending blocked\]$",
                                timeout=T)
        time.sleep(0.5)  # let Pidgin draw it
        shot = self.pidgin.screenshot(os.path.join(
            os.path.dirname(screenshot_path()), "pidgin-key-change-dialog.png"), "root")
        self.assertGreater(os.path.getsize(shot), 5000)
        # "Accept" is the dialog's first button: Alt+A (its mnemonic).
        self.pidgin.x.run("xdotool", "windowfocus", "--sync", dialog)
        self.pidgin.x.run("xdotool", "key", "alt+a")
        self.pidgin.wait_window(r"^bob \[E2EE: encrypted, not verified\]$",
                                timeout=T)
        self.assertEqual(self.pidgin.windows("^purple-e2ee$"), [])
        self.assertTrue(self.pidgin.alive(), "Pidgin exited")

    def test_dialog_closes_when_decided_by_command(self):
        """The key is accepted with /e2ee trust while its dialog is open:
        the dialog goes away by itself."""
        alice_jid = self.server.jid("alice")
        self.bob.wait_buddy_online(alice_jid, timeout=T)
        deadline = time.monotonic() + T
        while "trusted on first use" not in self.bob_status(alice_jid):
            self.assertLess(time.monotonic(), deadline, "Bob never got Alice's key")
            time.sleep(0.3)
        self.pidgin.wait_window("^Buddy List$", timeout=T)
        self.bob.send(alice_jid, TEXT_BA)
        window = self.pidgin.wait_window(r"^bob \[E2EE: ", timeout=T)
        self.bob.stop()
        shutil.rmtree(os.path.join(self.bob.user_dir, "purple-e2ee"))
        self.bob = self.h.restart(self.bob, plugins=[P], timeout=T)
        self.pidgin.wait_window("^purple-e2ee$", timeout=T)
        self.pidgin.type_into(window, "/e2ee trust")
        self.pidgin.wait_window(r"^bob \[E2EE: encrypted, not verified\]$",
                                timeout=T)
        deadline = time.monotonic() + T
        while self.pidgin.windows("^purple-e2ee$"):
            self.assertLess(time.monotonic(), deadline, "the dialog stayed open")
            time.sleep(0.2)
        self.assertTrue(self.pidgin.alive(), "Pidgin exited")


if __name__ == "__main__":
    harness.main(servers=("prosody",), need_plugin=True)
