#!/usr/bin/env python3
"""purple-e2ee demo: two libpurple clients with the plugin, on servers of
their own on 127.0.0.1, printing what each user saw and what the server
relayed.

    python3 tests/plugin/demo.py --build-dir BUILD

(scripts/demo.sh installs what is needed, builds, and runs this.)  Exits 0
when everything happened as expected, 1 otherwise, 77 when Prosody or ngIRCd
is not installed.
"""

import argparse
import base64
import html
import os
import re
import signal
import sys
import textwrap
import time
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))

T = 25.0                # bound of every single wait
TIME_LIMIT = 110        # the whole demo, in seconds
COL = 38                # width of one user's column
MARK_U = "[\U0001F512 unverified] "

# What the users type.  None of it may ever reach a server.
XMPP_MESSAGES = (
    ("alice", "Hi Bob! Lunch at the usual place at noon?"),
    ("bob", "Sure, see you there \U0001F642 Grüße an alle!"),
    ("alice", "Great. The door code is 4711, don't tell anyone."),
)
IRC_REPLY = "Got all of it, thanks."
SENTENCE = ("Meeting notes, part {n:02d}: the budget is approved, the "
            "launch moves to Thursday, and the café gets a new espresso "
            "machine. ")


def long_text(size=2048):
    """About `size` bytes of readable text, numbered so order matters."""
    parts, n = [], 1
    while len("".join(parts).encode()) < size:
        parts.append(SENTENCE.format(n=n))
        n += 1
    text = "".join(parts).encode()[:size].decode("utf-8", "ignore").rstrip()
    return text + " END"


def secrets():
    """Tokens of plaintext that must not appear in what a server saw."""
    tokens = [m for _, m in XMPP_MESSAGES] + [IRC_REPLY]
    tokens += ["door code is 4711", "Lunch at the usual", "budget is approved",
               "espresso machine", "Meeting notes"]
    return tokens


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def width(s):
    w = 0
    for ch in s:
        if unicodedata.combining(ch) or ch in "\uFE0F\u200D":
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def wrap(text, cols=COL):
    """Lines of at most `cols` display cells (wide characters count 2)."""
    out = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            cand = word if not line else line + " " + word
            if width(cand) <= cols:
                line = cand
                continue
            if line:
                out.append(line)
            while width(word) > cols:       # a long word is cut
                cut = cols
                while width(word[:cut]) > cols:
                    cut -= 1
                out.append(word[:cut])
                word = word[cut:]
            line = word
        out.append(line)
    return out


def pad(s, cols=COL):
    return s + " " * max(0, cols - width(s))


def short(s, keep=22):
    s = s.strip()
    return s if len(s) <= keep + 1 else s[:keep] + "\u2026"


class Report:
    def __init__(self):
        self.checks = 0
        self.passed = 0
        self.failed = []

    def title(self, text):
        print()
        print("\u2501\u2501 " + text + " " + "\u2501" * max(3, 76 - width(text)))

    def say(self, text):
        for line in textwrap.wrap(text, 80):
            print(line)

    def columns(self, left, right):
        """Side by side: what Alice saw | what Bob saw."""
        print("  " + pad("What Alice saw") + " \u2502 What Bob saw")
        print("  " + "\u2500" * COL + "\u2500\u253c" + "\u2500" * COL)
        lw = [l for item in left for l in wrap(item)]
        rw = [l for item in right for l in wrap(item)]
        for i in range(max(len(lw), len(rw))):
            a = lw[i] if i < len(lw) else ""
            b = rw[i] if i < len(rw) else ""
            print("  " + pad(a) + " \u2502 " + b)

    def server(self, label, lines):
        print("  What the server relayed (%s):" % label)
        for l in lines:
            print("  server \u2502 " + l)

    def check(self, ok, what):
        self.checks += 1
        if ok:
            self.passed += 1
            print("  \u2713 " + what)
        else:
            print("  \u2717 " + what + "  <-- NOT AS EXPECTED")
            self.failed.append(what)
        return ok


# --------------------------------------------------------------------------
# Helpers over the harness clients
# --------------------------------------------------------------------------

def plain(text):
    """A conversation write as plain text (system lines are HTML)."""
    text = re.sub(r"<br\s*/?>", "\n", text or "", flags=re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def system_lines(client, since):
    return [plain(e["text"]) for e in client.find(since=since, event="write")
            if "SYSTEM" in e["flags"]]


def e2ee_status(client, buddy):
    m = client.mark()
    client.cmd(buddy, "e2ee status")
    return "\n".join(system_lines(client, m))


def wait_key(client, buddy):
    deadline = time.monotonic() + T
    while True:
        text = e2ee_status(client, buddy)
        if "trusted on first use" in text:
            return text
        if time.monotonic() > deadline:
            raise harness.HarnessError("%s never learned %s's key:\n%s"
                                       % (client.name, buddy, text))
        time.sleep(0.3)


def device_summary(status_text):
    """'device X: trusted…' and the fingerprint, from /e2ee status."""
    m = re.search(r"device (\S+): ([^\n]+)\n\s*fingerprint ([0-9A-F ]+)",
                  status_text)
    if not m:
        return [status_text]
    fp = m.group(3).split()
    return ["device %s: %s" % (m.group(1), m.group(2)),
            "fingerprint %s \u2026 %s" % (" ".join(fp[:4]), " ".join(fp[-2:]))]


def prosody_lines(log, needle):
    """Stanzas the server received (RECV) containing `needle`."""
    return [l for l in log.splitlines() if "RECV:" in l and needle in l]


def irc_lines(blob, needle):
    text = blob.decode("utf-8", "replace")
    return [l for l in text.split("\r\n") if needle in l]


# --------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------

def xmpp_part(h, r):
    r.title("1. XMPP: first contact, keys found in status and profile")
    p = h.prosody(users=("alice", "bob"))
    r.say("Prosody runs on 127.0.0.1:%d with two new accounts, alice@localhost "
          "and bob@localhost, on each other's roster.  Two headless libpurple "
          "clients load purple-e2ee and sign on.  The link is not even TLS: "
          "the server sees every stanza." % p.port)
    alice = h.xmpp_client("alice", plugins=[P], resource="demo", wait=False)
    bob = h.xmpp_client("bob", plugins=[P], resource="demo", wait=False)
    h.wait_started(alice, bob, timeout=T)
    a_status = wait_key(alice, bob.jid)
    b_status = wait_key(bob, alice.jid)
    a_sees = alice.get_status(bob.jid)["message"] or ""
    b_sees = bob.get_status(alice.jid)["message"] or ""
    info = alice.get_info(bob.jid, timeout=T,
                          pred=lambda e: "PURPLE-E2EE" in (e.get("text") or ""))
    ptext = plain(info["text"])
    block = re.search(r"(-----BEGIN PURPLE-E2EE KEYS-----)\n(.*?)\n"
                      r"((?:[A-Za-z0-9_-]+\n)+)-----END", ptext, re.S)
    print()
    r.columns(
        ["bob's status message: " + short(a_sees, 20),
         "bob's profile: %s, a note, %d lines of key data"
         % (block.group(1), len(block.group(3).split()))
         if block else "bob's profile: (no key block)",
         "/e2ee status with bob:"] + device_summary(a_status),
        ["alice's status message: " + short(b_sees, 18),
         "", "/e2ee status with alice:"] + device_summary(b_status))
    log = p.log_text()
    pres = []
    for who, c in (("alice", alice), ("bob", bob)):
        m = re.search(r"c2s\w+\s+debug\s+SEND: <presence [^>]*from='%s[^>]*>"
                      r"<status>(\[e2ee:[^<]*)</status>" % re.escape(c.jid), log)
        if m:
            pres.append("%-5s \u2192 presence <status>%s</status>"
                        % (who, short(m.group(1), 20)))
    vcard = [l for l in log.splitlines()
             if "SEND: <iq" in l and "to='%s/" % alice.jid in l
             and "from='%s'" % bob.jid in l
             and "<DESC>-----BEGIN PURPLE-E2EE KEYS-----" in l]
    if vcard:
        pres.append("bob's vCard \u2192 alice <DESC>-----BEGIN PURPLE-E2EE "
                    "KEYS-----\u2026</DESC>")
    print()
    r.server("Prosody's stanza log", pres)
    print()
    r.check("[e2ee:" in a_sees and "[e2ee:" in b_sees,
            "each client publishes its public key in its status message")
    r.check(block is not None, "and in its profile (vCard), which Alice read")
    r.check("trusted on first use" in a_status and "trusted on first use" in b_status,
            "both learned the other's key without a prompt (trust on first use)")
    r.check(len(pres) == 3, "the server relayed the keys (public, nothing secret)")
    return p, alice, bob


def ratchet_header(armored):
    """(is a session start, start mode, ratchet public key as hex) of a
    single-recipient v2 envelope (docs/PROTOCOL.md section 5): byte 0 is the
    envelope type, then the ratchet message: version, type (2 = start),
    flags, two device tags, the sender's ratchet key (65 bytes) at 11; a
    start's prefix begins with its mode at 84."""
    data = base64.urlsafe_b64decode(armored[5:] + "=" * (-len(armored[5:]) % 4))
    msg = data[1:]
    start = msg[1] == 2
    return start, (msg[84] if start else None), msg[11:76].hex()


def ratchet_part(envelopes, r):
    r.title("3. Forward secrecy: the ratchet turned at every reply")
    lines, keys = [], []
    for sender, armored in envelopes:
        start, mode, key = ratchet_header(armored)
        keys.append((sender, key))
        lines.append("%-5s ratchet key %s…%s" % (
            sender, key[2:14], "  (session start, %s)" % (
                "from Bob's signed prekey" if mode == 1 else "without a prekey")
            if start else ""))
    r.server("what the headers show (public values only)", lines)
    print()
    r.say("Alice's first message started a session from the signed prekey Bob "
          "published. Each reply carried a new ratchet key, and each new key "
          "gave new message keys through a fresh Diffie-Hellman exchange; the "
          "old keys are deleted once used. So a copy of either keyring taken "
          "now cannot read the messages above (forward secrecy), and someone "
          "who copied a keyring earlier is locked out again after one round "
          "trip (post-compromise security).")
    print()
    (a1, k1), (b1, k2), (a2, k3) = keys[:3]
    first_start = ratchet_header(envelopes[0][1])
    r.check(first_start[0] and first_start[1] == 1,
            "Alice's first message started the session from Bob's signed prekey")
    r.check(len({k1, k2, k3}) == 3,
            "three messages, three ratchet keys: a new one at every turn")


def conversation_part(p, alice, bob, r):
    r.title("2. XMPP: an encrypted conversation, both ways")
    users = {"alice": alice, "bob": bob}
    left, right, wire, ok = [], [], [], True
    envelopes = []
    for sender, text in XMPP_MESSAGES:
        src = users[sender]
        dst = bob if src is alice else alice
        m, s = dst.mark(), src.mark()
        src.send(dst.jid, text)
        raw = src.wait_event("sent-raw", since=s, timeout=T)["text"]
        got = dst.wait_message(MARK_U + text, who=src.jid, since=m, timeout=T)
        mine = src.wait_message(MARK_U + text, flag="SEND", since=s, timeout=T)
        ok = ok and raw.startswith("?E2E:") and got["text"] == mine["text"]
        envelopes.append((sender, raw))
        line_src = "me: " + mine["text"]
        line_dst = sender + ": " + got["text"]
        if src is alice:
            left.append(line_src)
            right.append(line_dst)
        else:
            left.append(line_dst)
            right.append(line_src)
        stanza = [l for l in prosody_lines(p.log_text(), raw)]
        wire.append("%-5s \u2192 %-5s <body>%s</body> (%d chars)" % (
            sender, "bob" if sender == "alice" else "alice",
            short(raw, 20), len(raw)) if stanza else
            "%s's message: NOT FOUND in the log" % sender)
        ok = ok and bool(stanza)
    r.columns(left, right)
    print()
    r.server("Prosody's stanza log", wire)
    print()
    log = p.log_text()
    leaked = [t for t in secrets() if t in log]
    r.check(ok, "every message left as one ?E2E: envelope and arrived decrypted, "
                "marked \U0001F512 on both sides")
    r.check(not leaked, "none of the plaintext is in Prosody's log (%d KiB of "
                        "stanzas)%s" % (len(log) // 1024,
                                        (": found %r" % leaked) if leaked else ""))
    r.check(all(not c.errors() for c in (alice, bob)),
            "no errors or warnings in either client")
    return envelopes


def irc_part(h, r):
    r.title("4. IRC: keys exchanged in-band, a long message in pieces")
    n = h.ngircd()
    r.say("ngIRCd runs on 127.0.0.1:%d.  IRC has no profiles, so the plugins "
          "exchange keys inside the conversation: Alice's plugin sends a key "
          "offer, Bob's answers.  Alice's connection goes through a recording "
          "relay, so we see the exact bytes." % n.port)
    alice = h.irc_client("alice", plugins=[P], tap=True, wait=False,
                         name="alice-irc")
    bob = h.irc_client("bob", plugins=[P], wait=False, name="bob-irc")
    h.wait_started(alice, bob, timeout=T)
    m = alice.mark()
    alice.cmd("bob", "e2ee status")          # opens the conversation
    a_status = wait_key(alice, "bob")
    b_status = wait_key(bob, "alice")
    learned = [l for l in system_lines(alice, m) if l.startswith("Learned")]
    print()
    r.columns(learned[:1] or device_summary(a_status),
              ["/e2ee status with alice:"] + device_summary(b_status))
    wire = alice.tap
    # With its signed prekey the key data is longer than an IRC line: it
    # goes in pieces, after a readable note for people without the plugin.
    notes = irc_lines(wire.to_server, "PRIVMSG bob :?E2K ")
    offers = [l for l in irc_lines(wire.to_server, "PRIVMSG bob :?E2F:")
              if re.search(r":1/\d+:\?E2K:", l)]
    answers = [l for l in irc_lines(wire.to_client, "PRIVMSG alice :?E2F:")
               if re.search(r":1/\d+:\?E2A:", l)]
    pieces = lambda first: int(re.search(r":1/(\d+):", first).group(1))
    print()
    lines = []
    if notes:
        lines.append("alice \u2192 PRIVMSG bob :\"%s\" (a note for people "
                     "without the plugin)" % short(notes[0].split(" :", 1)[1][5:], 40))
    if offers:
        lines.append("alice \u2192 PRIVMSG bob :%s (the key offer, %d pieces)"
                     % (short(offers[0].split(" :", 1)[1], 24), pieces(offers[0])))
    if answers:
        lines.append("bob   \u2192 PRIVMSG alice :%s (the answer, %d pieces)"
                     % (short(answers[0].split(" :", 1)[1], 24), pieces(answers[0])))
    r.server("the IRC connection", lines)
    print()
    r.check(len(offers) == 1 and len(answers) == 1 and len(notes) == 1,
            "one key offer, one answer, nothing shown to either user as a message")
    r.check(not [e for c in (alice, bob) for e in c.writes(flag="RECV")
                 if "?E2K:" in e["text"] or "?E2A:" in e["text"]],
            "the offer and answer were handled by the plugins, not displayed")

    # A long message: IRC lines are limited to 512 bytes.
    text = long_text()
    before = len(irc_lines(wire.to_server, "PRIVMSG bob :"))
    mb, ma = bob.mark(), alice.mark()
    alice.send("bob", text)
    got = bob.wait_message(MARK_U + text, who="alice", since=mb, timeout=60)
    bm = bob.mark()
    bob.send("alice", IRC_REPLY)
    reply = alice.wait_message(MARK_U + IRC_REPLY, who="bob", since=ma,
                               timeout=T)
    bob.wait_event("sent-raw", since=bm, timeout=T)
    alice.ping()
    sent = irc_lines(wire.to_server, "PRIVMSG bob :")[before:]
    frags = [l for l in sent if ":?E2F:" in l]
    print("  Alice sends a %d-byte message (%d characters)." % (len(text.encode()),
                                                             len(text)))
    print()
    r.columns(["me: " + MARK_U + short(text, 24) + " (%d bytes)" % len(text.encode()),
               reply["who"] + ": " + reply["text"]],
              ["alice: " + MARK_U + short(got["text"][len(MARK_U):], 22)
               + " (%d bytes, complete)" % len(got["text"][len(MARK_U):].encode()),
               "me: " + MARK_U + IRC_REPLY])
    print()
    lines = ["alice \u2192 %d lines, each one piece of one envelope:" % len(sent)]
    for l in frags[:3]:
        lines.append("  %s (%d bytes)" % (short(l, 30), len(l.encode())))
    if len(frags) > 3:
        lines.append("  \u2026 %d more" % (len(frags) - 3))
    back = irc_lines(wire.to_client, "PRIVMSG alice :?E2E:")
    if back:
        lines.append("bob   \u2192 PRIVMSG alice :%s (%d bytes)"
                     % (short(back[-1].split(" :", 1)[1], 18), len(back[-1])))
    r.server("the IRC connection", lines)
    print()
    seen = wire.text()
    leaked = [t for t in secrets() if t in seen]
    r.check(len(frags) >= 3 and len(frags) == len(sent)
            and all(len(l.encode()) + 2 <= 512 for l in frags),
            "the message left as %d fragments, each within IRC's 512-byte line"
            % len(frags))
    r.check(got["text"] == MARK_U + text,
            "Bob's plugin put them back together: one message, byte for byte")
    r.check(not leaked and "?E2E:" in seen,
            "the IRC server relayed only envelopes%s"
            % ((": found %r" % leaked) if leaked else ""))
    r.check(all(not c.errors() for c in (alice, bob)),
            "no errors or warnings in either client")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", help="meson build dir with the plugin and "
                    "tests/plugin/e2ee-test-client (default: from E2EE_* "
                    "variables, as meson test sets them)")
    ap.add_argument("--plugin-dir", help="folder holding the purple-e2ee.so "
                    "to load instead of BUILD/plugin, e.g. the installed one "
                    "(pkg-config --variable=plugindir purple)")
    args = ap.parse_args()
    if args.build_dir:
        b = os.path.abspath(args.build_dir)
        os.environ["E2EE_BUILD_ROOT"] = b
        os.environ["E2EE_PLUGIN_DIR"] = os.path.join(b, "plugin")
        os.environ["E2EE_TEST_CLIENT"] = os.path.join(b, "tests", "plugin",
                                                      "e2ee-test-client")
        os.environ.setdefault("E2EE_SOURCE_ROOT", SOURCE_ROOT)
    if args.plugin_dir:
        os.environ["E2EE_PLUGIN_DIR"] = os.path.abspath(args.plugin_dir)

    # What the clients write is compared with English text: an installed
    # translation must not change it (the users' words are UTF-8 anyway).
    os.environ["LC_ALL"] = "C.UTF-8"
    os.environ.pop("LANGUAGE", None)

    global harness, P
    sys.path.insert(0, HERE)
    import harness
    P = harness.PLUGIN_ID

    missing = harness.missing_servers(("prosody", "ngircd"))
    if missing:
        print("demo: not installed: %s (scripts/install-deps.sh installs them)"
              % ", ".join(missing))
        return 1 if harness.servers_required() else harness.SKIP_EXIT_CODE
    if not os.access(harness.CLIENT or "", os.X_OK) or not harness.plugin_available():
        print("demo: build first (plugin or e2ee-test-client missing in %s)"
              % os.environ.get("E2EE_BUILD_ROOT"))
        print("demo: plugin looked for in %s" % harness.PLUGIN_DIR)
        return 1

    def too_slow(signum, frame):
        raise harness.HarnessError("the demo took longer than %d s" % TIME_LIMIT)
    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(TIME_LIMIT)

    r = Report()
    start = time.monotonic()
    print("purple-e2ee demo: end-to-end encrypted IMs between two libpurple "
          "clients,\nwith throwaway servers on 127.0.0.1 (nothing leaves this "
          "machine).")
    h = harness.Harness()
    workdir = h.dir
    try:
        p, alice, bob = xmpp_part(h, r)
        ratchet_part(conversation_part(p, alice, bob, r), r)
        irc_part(h, r)
    except Exception as e:  # a bounded wait ran out, a client died, ...
        r.failed.append("%s: %s" % (type(e).__name__, str(e)[:3000]))
        print("\nDEMO FAILED while running: %s" % str(e)[:3000])
    finally:
        signal.alarm(0)
        h.close()
        harness.cleanup_all()
    r.title("Done in %.0f s" % (time.monotonic() - start))
    print("Stopped Prosody, ngIRCd and the four clients; removed %s: %s."
          % (workdir, "gone" if not os.path.exists(workdir) else "STILL THERE"))
    if os.path.exists(workdir) and not os.environ.get("E2EE_KEEP_TMP"):
        r.failed.append("temp dir left behind")
    if r.failed:
        print("%d of %d checks passed; NOT as expected:" % (r.passed, r.checks))
        for f in r.failed:
            print("  - " + f.splitlines()[0])
        return 1
    print("All %d checks passed: the users read each other, the servers only "
          "saw envelopes." % r.checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
