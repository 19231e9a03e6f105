#!/usr/bin/env python3
"""The demo (tests/plugin/demo.py, run by scripts/demo.sh) runs to the end,
in bounded time, and what it prints holds: the users' columns show the
plaintext with the encrypted marker, the server's lines show envelopes and
never the plaintext, and it cleaned up after itself."""

import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import demo  # noqa: E402
import harness  # noqa: E402

MARK_U = demo.MARK_U


class DemoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start = time.monotonic()
        r = subprocess.run([sys.executable, os.path.join(HERE, "demo.py")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=180)
        cls.elapsed = time.monotonic() - start
        cls.rc = r.returncode
        cls.out = r.stdout.decode("utf-8", "replace")
        sys.stderr.write(cls.out)

    def user_columns(self):
        """(alice, bob): the text of the two columns, each joined into one
        line so wrapped messages can be searched whole."""
        left, right = [], []
        for line in self.out.splitlines():
            if line.startswith("  ") and " \u2502 " in line \
                    and not line.startswith("  server"):
                a, _, b = line[2:].partition(" \u2502 ")
                left.append(a.strip())
                right.append(b.strip())
        return " ".join(left), " ".join(right)

    def server_lines(self):
        return [l for l in self.out.splitlines() if l.startswith("  server \u2502")]

    def test_exit_status_and_time(self):
        self.assertEqual(self.rc, 0, "demo failed")
        self.assertLess(self.elapsed, 120)
        self.assertRegex(self.out, r"All (\d+) checks passed")
        self.assertNotIn("NOT AS EXPECTED", self.out)
        self.assertEqual(len(re.findall("^  \u2713 ", self.out, re.M)),
                         int(re.search(r"All (\d+) checks", self.out).group(1)))

    def test_users_saw_plaintext_with_marker(self):
        alice, bob = self.user_columns()
        for sender, text in demo.XMPP_MESSAGES:
            line = MARK_U + text
            self.assertIn(("me: " if sender == "alice" else "bob: ") + line, alice)
            self.assertIn(("me: " if sender == "bob" else "alice: ") + line, bob)
        self.assertIn("bob: " + MARK_U + demo.IRC_REPLY, alice)
        self.assertIn("me: " + MARK_U + demo.IRC_REPLY, bob)
        n = len(demo.long_text().encode())
        self.assertIn("(%d bytes, complete)" % n, bob)
        for col in (alice, bob):
            self.assertIn("trusted on first use", col)

    def test_server_saw_only_envelopes(self):
        lines = self.server_lines()
        self.assertGreaterEqual(len(lines), 8)
        text = "\n".join(lines)
        # Status tags, XMPP envelopes, IRC offer/answer and fragments.
        self.assertEqual(len(re.findall(r"<body>\?E2E:", text)),
                         len(demo.XMPP_MESSAGES))
        self.assertEqual(len(re.findall(r"<status>\[e2ee:", text)), 2)
        self.assertIn(":?E2K:", text)
        self.assertIn(":?E2A:", text)
        # The ratchet part: three distinct ratchet keys, the first message a
        # session start from Bob's signed prekey.
        keys = re.findall(r"ratchet key ([0-9a-f]{12})", text)
        self.assertEqual(len(keys), 3)
        self.assertEqual(len(set(keys)), 3)
        self.assertIn("session start, from Bob's signed prekey", text)
        self.assertGreaterEqual(len(re.findall(r":\?E2F:", text)), 3)
        m = re.search(r"alice \u2192 (\d+) lines, each one piece", text)
        self.assertIsNotNone(m)
        self.assertGreaterEqual(int(m.group(1)), 5)
        for token in demo.secrets():
            self.assertNotIn(token, text)

    def test_cleaned_up(self):
        m = re.search(r"removed (\S+): gone\.", self.out)
        self.assertIsNotNone(m, "no clean-up line")
        self.assertFalse(os.path.exists(m.group(1)))


if __name__ == "__main__":
    missing = harness.missing_servers(("prosody", "ngircd"))
    if missing and not harness.servers_required():
        sys.stderr.write("SKIP: missing %s\n" % ", ".join(missing))
        sys.exit(harness.SKIP_EXIT_CODE)
    unittest.main(verbosity=2)
