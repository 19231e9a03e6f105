#!/usr/bin/env python3
"""purple-e2ee inside bitlbee-libpurple, end to end on loopback.

A real BitlBee (Debian's bitlbee-libpurple, ForkDaemon mode on a free port
of 127.0.0.1, a private config dir) with the plugin and the BitlBee loader
in its plugin folder; an IRC client (a socket here) signed in to it; BitlBee
signed in to a private Prosody as carol; a headless libpurple client with
the plugin signed in as bob.  Checked: the loader starts the plugin, the
XMPP wire only carries envelopes, carol's IRC client reads bob's words,
/e2ee commands typed in the query run, and the key-change warning reaches
the IRC user from BitlBee's root user.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = harness.PLUGIN_ID
T = 25.0
LOADER_FILE = "purple-e2ee-bitlbee.so"
MARK_U = "[\U0001F512 unverified] "
SECRET_C = "charlie-secret-2718"
SECRET_B = "bravo-secret-3141"


def loader_path():
    """The BitlBee loader next to the plugin (build dir: plugin/bitlbee/)."""
    for cand in (os.path.join(harness.PLUGIN_DIR, "bitlbee", LOADER_FILE),
                 os.path.join(harness.PLUGIN_DIR, LOADER_FILE)):
        if harness.PLUGIN_DIR and os.path.exists(cand):
            return cand
    return ""


def purple_plugindir():
    """libpurple's own plugin folder (pkg-config's plugindir)."""
    try:
        out = subprocess.run(["pkg-config", "--variable=plugindir", "purple"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return os.path.realpath(out.strip()) if out.strip() else ""


class BitlBee:
    """bitlbee -F -n on 127.0.0.1:port with its own config and plugin dir."""

    def __init__(self, workdir, plugin_files):
        self.dir = os.path.join(workdir, "bitlbee")
        self.config_dir = os.path.join(self.dir, "config")
        self.plugin_dir = os.path.join(self.dir, "plugins")
        purple_dir = os.path.join(self.plugin_dir, "purple")
        os.makedirs(self.config_dir)
        os.makedirs(purple_dir)
        # BitlBee adds PLUGINDIR/purple to libpurple's plugin search path,
        # ahead of libpurple's own folder: these copies win over installed ones.
        # Installed files (libpurple's own folder) are found there by BitlBee
        # itself, as on a user's machine.
        for f in plugin_files:
            if os.path.realpath(os.path.dirname(f)) != purple_plugindir():
                shutil.copy(f, purple_dir)
        self.port = harness.free_port()
        self.conf = os.path.join(self.dir, "bitlbee.conf")
        self.log_path = os.path.join(self.dir, "bitlbee.log")
        with open(self.conf, "w") as f:
            f.write("[settings]\nRunMode = ForkDaemon\nDaemonInterface = 127.0.0.1\n"
                    "DaemonPort = %d\nAuthMode = Open\nConfigDir = %s\n"
                    "PluginDir = %s\nPidFile = %s\nMotdFile = /dev/null\n"
                    % (self.port, self.config_dir, self.plugin_dir,
                       os.path.join(self.dir, "bitlbee.pid")))
        self.uid, self.gid = harness._unprivileged()
        harness._chown_tree(self.dir, self.uid, self.gid)
        self.proc = None

    def start(self):
        kw = {"start_new_session": True}
        if self.uid is not None:
            kw.update(user=self.uid, group=self.gid, extra_groups=[])
        env = dict(os.environ, BITLBEE_DEBUG="1", HOME=self.dir)
        env.pop("PURPLE_UNSAFE_DEBUG", None)
        self._log = open(self.log_path, "wb")
        # E2EE_BITLBEE_WRAP: a command to run BitlBee under (valgrind, ...).
        wrap = os.environ.get("E2EE_BITLBEE_WRAP", "").split()
        self.proc = subprocess.Popen(wrap + [harness.which("bitlbee"), "-F", "-n", "-c",
                                      self.conf, "-d", self.config_dir],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, **kw)
        harness._register_proc(self.proc)
        harness.wait_port(self.port, T, self.proc)
        return self

    def log_text(self):
        return harness._read_text(self.log_path)

    def stop(self):
        if self.proc is not None:
            harness._stop_proc(self.proc)
            self.proc = None
            self._log.close()


class IrcUser:
    """A minimal IRC client: every line BitlBee sends is kept, waits bounded."""

    def __init__(self, port, nick, log_path):
        self.nick = nick
        self.log = open(log_path, "a", encoding="utf-8")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.sock.settimeout(None)
        self.lines = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send("NICK %s" % nick)
        self.send("USER %s 0 * :%s" % (nick, nick))

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            while b"\r\n" in buf:
                raw, buf = buf.split(b"\r\n", 1)
                line = raw.decode("utf-8", errors="replace")
                if line.startswith("PING"):
                    self.send("PONG" + line[4:])
                with self._cond:
                    self.lines.append(line)
                    if not self.log.closed:
                        self.log.write("< %s\n" % line)
                        self.log.flush()
                    self._cond.notify_all()
        with self._cond:
            self.lines.append(None)
            self._cond.notify_all()

    def send(self, line):
        with self._cond:
            self.log.write("> %s\n" % line)
            self.log.flush()
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def mark(self):
        with self._cond:
            return len(self.lines)

    def privmsgs(self, since=0, sender=None, target=None):
        """(sender nick, target, text) of PRIVMSG/NOTICE lines."""
        out = []
        with self._cond:
            lines = self.lines[since:]
        for line in lines:
            m = line and re.match(r"^:([^! ]+)\S* (PRIVMSG|NOTICE) (\S+) :(.*)$", line)
            if not m:
                continue
            if sender is not None and m.group(1) != sender:
                continue
            if target is not None and m.group(3) != target:
                continue
            out.append((m.group(1), m.group(3), m.group(4)))
        return out

    def wait_msg(self, pred, since=0, timeout=T, what="a message", **kw):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.privmsgs(since, **kw):
                    if pred(m[2]):
                        return m
                if self.lines and self.lines[-1] is None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        raise harness.HarnessError("IRC: no %s within %.0fs; last lines:\n%s" % (
            what, timeout, "\n".join(str(x) for x in self.lines[-40:])))

    def root(self, text):
        """A command for BitlBee's root user in the control channel."""
        self.send("PRIVMSG &bitlbee :%s" % text)

    def close(self):
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        self.sock.close()
        with self._cond:
            self.log.close()


class BitlBeeTest(unittest.TestCase):

    def setUp(self):
        # Debian's bitlbee is not built with AddressSanitizer, so it cannot
        # load a sanitizer-built plugin; the normal build and the package
        # step run these tests.
        harness.skip_real_ui_if_sanitized()
        self.h = harness.Harness()
        self.addCleanup(self.h.close)
        self.prosody = self.h.prosody(users=("carol", "bob"))
        # Without the loader BitlBee never starts the plugin: every check
        # below fails.
        files = [harness.plugin_path()] + ([loader_path()] if loader_path() else [])
        self.bitlbee = BitlBee(self.h.dir, files)
        self.addCleanup(self.bitlbee.stop)
        self.bitlbee.start()
        self.irc = IrcUser(self.bitlbee.port, "carol",
                           os.path.join(self.h.dir, "irc-carol.log"))
        self.addCleanup(self.irc.close)
        self.irc.wait_msg(lambda t: "Welcome to the BitlBee" in t, sender="root",
                          what="BitlBee's welcome")

    def describe(self):
        return ("--- bitlbee log (tail) ---\n%s"
                % self.bitlbee.log_text()[-6000:])

    def sign_in_carol(self):
        irc = self.irc
        since = irc.mark()
        irc.root("account add jabber %s %s" % (self.prosody.jid("carol"),
                                               harness.DEFAULT_PASSWORD))
        irc.wait_msg(lambda t: "Account successfully added" in t, since=since,
                     sender="root", what="account added")
        for setting in ("connect_server 127.0.0.1", "port %d" % self.prosody.port,
                        "connection_security opportunistic_tls"):
            since = irc.mark()
            irc.root("account jabber set " + setting)
            irc.wait_msg(lambda t: t.startswith(setting.split()[0] + " = "),
                         since=since, sender="root", what="setting " + setting)
        since = irc.mark()
        irc.root("account jabber on")
        irc.wait_msg(lambda t: "Logged in" in t, since=since, sender="root",
                     what="carol logged in to XMPP")

    def wait_key(self, buddy_nick, timeout=T):
        """Poll /e2ee status in the query until carol's plugin holds a key."""
        deadline = time.monotonic() + timeout
        last = []
        while time.monotonic() < deadline:
            since = self.irc.mark()
            self.irc.send("PRIVMSG %s :/e2ee status" % buddy_nick)
            try:
                self.irc.wait_msg(lambda t: "purple-e2ee" in t, since=since,
                                  sender="root", timeout=5, what="status")
            except harness.HarnessError:
                continue
            time.sleep(0.3)  # the status is several lines
            last = [m[2] for m in self.irc.privmsgs(since, sender="root")]
            if any("trusted on first use" in t for t in last):
                return last
            time.sleep(0.5)
        self.fail("carol never learned %s's key; last status: %r\n%s"
                  % (buddy_nick, last, self.describe()))

    def test_encrypted_chat_commands_and_key_change(self):
        self.sign_in_carol()
        bob = self.h.xmpp_client("bob", plugins=[P], timeout=T)
        bob.add_buddy(self.prosody.jid("carol"))

        # The loader started the plugin for carol's own folder, and /e2ee
        # typed in the query runs there instead of going to bob.
        status = self.wait_key("bob")
        self.assertTrue(any("device" in t for t in status), status)
        # (the keyring file itself is written a moment later)
        keyring_dir = os.path.join(self.bitlbee.config_dir, "purple", "carol",
                                   "purple-e2ee")
        self.assertTrue(os.path.isdir(keyring_dir), "no keyring folder of carol's")
        self.assertFalse(os.path.exists(os.path.join(
            self.bitlbee.config_dir, "purple", "purple-e2ee")),
            "a keyring folder shared by every BitlBee user was made")
        self.assertFalse(bob.find(event="write", pred=lambda e: "RECV" in e["flags"]
                                  and "/e2ee" in (e.get("text") or "")),
                         "an /e2ee command reached bob as a message")

        # carol -> bob from the IRC client: bob reads it, the wire does not.
        since_b = bob.mark()
        self.irc.send("PRIVMSG bob :Hi Bob, %s" % SECRET_C)
        got = bob.wait_message(contains=SECRET_C, since=since_b, timeout=T)
        self.assertTrue(got["text"].startswith(MARK_U), got)

        # bob -> carol: the IRC client reads plaintext with the marker.
        since = self.irc.mark()
        bob.send(self.prosody.jid("carol"), "Hello Carol, " + SECRET_B)
        m = self.irc.wait_msg(lambda t: SECRET_B in t, since=since, sender="bob",
                              what="bob's message in the query")
        self.assertTrue(m[2].startswith(MARK_U), m)
        self.assertIn("Hello Carol", m[2])

        wire = self.prosody.log_text()
        self.assertGreaterEqual(len(re.findall(r"\?E2E:", wire)), 2)
        for secret in (SECRET_C, SECRET_B):
            self.assertNotIn(secret, wire, "plaintext on the XMPP wire")
        self.assertNotIn(SECRET_B, self.bitlbee.log_text())

        # bob comes back with a new key: the warning reaches the IRC user,
        # from root (no buddy can write there), and carol's next message is
        # held back instead of going out under the new key.
        since = self.irc.mark()
        bob_new = self.h.xmpp_client("bob", plugins=[P], timeout=T,
                                     resource="other", name="bob-new")
        # The system line (BitlBee also relays the decision dialog, whose
        # title comes first and names no device).
        warn = self.irc.wait_msg(lambda t: "NEW DEVICE" in t
                                 and re.search(r"device \S+,", t), since=since,
                                 sender="root", target="&bitlbee",
                                 what="new-device warning from root")
        self.assertIn("bob@localhost", warn[2])
        kid = re.search(r"device (\S+),", warn[2]).group(1)

        # Accepting it from the query: the argument reaches the command, and
        # the new device reads carol's next message.
        since = self.irc.mark()
        self.irc.send("PRIVMSG bob :/e2ee trust %s" % kid)
        self.irc.wait_msg(lambda t: "purple-e2ee - bob@localhost - Accepted" in t,
                          since=since, sender="root",
                          what="answer to /e2ee trust")
        since_n = bob_new.mark()
        self.irc.send("PRIVMSG bob :Welcome, new device")
        got = bob_new.wait_message(contains="Welcome, new device", since=since_n,
                                   timeout=T)
        self.assertTrue(got["text"].startswith(MARK_U), got)
        self.assertFalse(bob.find(event="write", pred=lambda e: "RECV" in e["flags"]
                                  and "/e2ee" in (e.get("text") or "")),
                         "an /e2ee command reached bob as a message")

    def test_changed_key_blocks_sending_and_warns_the_irc_user(self):
        self.sign_in_carol()
        bob = self.h.xmpp_client("bob", plugins=[P], timeout=T)
        bob.add_buddy(self.prosody.jid("carol"))
        self.wait_key("bob")

        # Bob reinstalls: same account, a new identity key.
        bob.stop()
        shutil.rmtree(os.path.join(bob.user_dir, "purple-e2ee"))
        since = self.irc.mark()
        bob = self.h.restart(bob, plugins=[P], timeout=T)
        warn = self.irc.wait_msg(lambda t: "CHANGED" in t and "BLOCKED" in t,
                                 since=since,
                                 sender="root", target="&bitlbee",
                                 what="key-change warning from root")
        self.assertIn("bob@localhost", warn[2])
        self.assertIn("BLOCKED", warn[2])
        # Nothing a buddy says can look like it: bob's words arrive in the
        # query from bob, the plugin's lines only from root.
        self.assertFalse([m for m in self.irc.privmsgs(since) if m[0] != "root"
                          and "CHANGED" in m[2]])

        # Carol types a message anyway: it is held back, she is told so.
        since, since_b = self.irc.mark(), bob.mark()
        self.irc.send("PRIVMSG bob :must not leave %s" % SECRET_C)
        self.irc.wait_msg(lambda t: "NOT sent" in t, since=since, sender="root",
                          what="not-sent notice from root")
        bob.ping()
        time.sleep(1.0)
        self.assertFalse(bob.find(since=since_b, event="write",
                                  pred=lambda e: SECRET_C in (e.get("text") or "")))
        self.assertNotIn("must not leave", self.prosody.log_text())

        # She accepts the new key from the query; messages flow again.
        since = self.irc.mark()
        self.irc.send("PRIVMSG bob :/e2ee trust")
        self.irc.wait_msg(lambda t: "purple-e2ee - bob@localhost - Accepted" in t,
                          since=since, sender="root", what="answer to /e2ee trust")
        since_b = bob.mark()
        self.irc.send("PRIVMSG bob :new key accepted")
        got = bob.wait_message(contains="new key accepted", since=since_b, timeout=T)
        self.assertTrue(got["text"].startswith(MARK_U), got)


class OtherUiTest(unittest.TestCase):
    """Outside BitlBee the loader stays out of the way: a libpurple client
    that did not choose purple-e2ee does not get it."""

    def test_loader_loads_nothing_in_another_ui(self):
        h = harness.Harness()
        self.addCleanup(h.close)
        p = h.prosody(users=("dave",))
        both = os.path.join(h.dir, "plugins")
        os.makedirs(both)
        for f in (harness.plugin_path(), loader_path()):
            shutil.copy(f, both)
        c = harness.Client("dave", "prpl-jabber", p.jid("dave", "test"),
                           harness.DEFAULT_PASSWORD, p.port, h.dir, plugin_dir=both)
        h._clients.append(c)
        c.wait_event("ready", timeout=T)
        c.wait_signed_on(timeout=T)
        # Once more, now that the main loop has run: the loader would have
        # started purple-e2ee here.
        c.signoff()
        c.signon(timeout=T)
        c.ping()
        log = harness._read_text(c.debug_log_path)
        self.assertIn("purple-e2ee-bitlbee.so", log)  # it was probed
        self.assertFalse("keyring open" in log or "purple-e2ee loaded" in log,
                         "the loader started purple-e2ee outside BitlBee")
        self.assertFalse("[e2ee:" in p.log_text(), "a key was published")


if __name__ == "__main__":
    harness.main(servers=("prosody", "bitlbee"), need_plugin=True)
