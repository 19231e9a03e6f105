"""The attacker's tools for the plugin tests (standard library only).

- Relay: a man in the middle on 127.0.0.1 in front of the real Prosody or
  ngIRCd.  It cuts the byte stream into units (IRC lines, or XMPP top-level
  stanzas) and passes each through the test's rules, which may drop it,
  rewrite it, or let it pass; the test can inject units towards either side
  and replay any unit it saw.  Everything that passed is recorded.
- XmppRaw / IrcRaw: a bare protocol client (no libpurple, no plugin) for a
  third user or for the server posing as a second login of the victim's own
  account (e.g. alice@localhost/evil).
- Key helpers: a fresh P-256 identity from the built `purple-e2ee` tool, the
  compact key set of PROTOCOL.md section 3 (versions 1 and 2), sealing a
  protocol v2 session start with it, and reading who a v2 envelope is for.
"""

import base64
import json
import os
import re
import socket
import subprocess
import threading
import time

import harness

TO_SERVER = ">"
TO_CLIENT = "<"


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------

class LineFramer:
    """IRC: one unit per line (the line ending stays with the unit)."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            out.append(line + b"\n")
        return out


_TAG = re.compile(rb"<(/?)([^\s>/!?]+)[^>]*?(/?)>|<\?[^>]*\?>|<!--.*?-->",
                  re.S)


class XmppFramer:
    """XMPP: the stream header is one unit, then each top-level element.

    Tracks element depth over complete tags only; good enough for the
    stanzas libpurple and Prosody exchange on a plain loopback stream."""

    def __init__(self):
        self.buf = b""
        self.depth = 0
        self.start = 0

    def feed(self, data):
        self.buf += data
        out = []
        pos = 0
        unit_start = 0
        while True:
            m = _TAG.search(self.buf, pos)
            if m is None:
                break
            pos = m.end()
            if m.group(2) is None:   # prolog or comment
                if self.depth <= 1:
                    out.append(self.buf[unit_start:pos])
                    unit_start = pos
                continue
            closing, name, empty = m.group(1), m.group(2), m.group(3)
            if name == b"stream:stream":
                # opening (or closing) the stream: its own unit
                self.depth = 0 if closing else 1
                out.append(self.buf[unit_start:pos])
                unit_start = pos
                continue
            if closing:
                self.depth -= 1
            elif not empty:
                self.depth += 1
            if self.depth <= 1:
                out.append(self.buf[unit_start:pos])
                unit_start = pos
        self.buf = self.buf[unit_start:]
        return [u for u in out if u.strip()]


# --------------------------------------------------------------------------
# The relay
# --------------------------------------------------------------------------

class Relay:
    """127.0.0.1:self.port -> 127.0.0.1:target_port, unit by unit.

    rules: callables rule(direction, unit_bytes) returning None (pass on),
    b"" / False (drop) or bytes (send these instead).  Directions are
    TO_SERVER (">") and TO_CLIENT ("<").  self.units holds (direction, bytes
    as sent on) for everything that passed, self.dropped what was dropped.
    Only the most recent connection is used for inject().
    """

    def __init__(self, target_port, framing="line", rules=()):
        self.target_port = target_port
        self.framing = framing
        self.rules = list(rules)
        self.units = []
        self.dropped = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._socks = []
        self._down = None
        self._up = None
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _framer(self):
        return LineFramer() if self.framing == "line" else XmppFramer()

    def _accept_loop(self):
        while not self._closed:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port),
                                              timeout=harness.DEFAULT_TIMEOUT)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            with self._lock:
                self._socks += [down, up]
                self._down, self._up = down, up
            threading.Thread(target=self._pump, args=(down, up, TO_SERVER),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, TO_CLIENT),
                             daemon=True).start()

    def _pump(self, src, dst, way):
        framer = self._framer()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                for unit in framer.feed(data):
                    self._forward(dst, way, unit)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _forward(self, dst, way, unit):
        with self._lock:
            out = unit
            for rule in list(self.rules):
                r = rule(way, out)
                if r is None:
                    continue
                if r is False or r == b"":
                    self.dropped.append((way, unit))
                    self._cond.notify_all()
                    return
                out = r
            self.units.append((way, out))
            self._cond.notify_all()
            dst.sendall(out)

    def add_rule(self, rule):
        with self._lock:
            self.rules.append(rule)

    def inject(self, data, way=TO_CLIENT):
        """Send bytes (or text) to the client (default) or the server, as
        if the other side had sent them.  IRC text gets CRLF if missing."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.framing == "line" and not data.endswith(b"\n"):
            data += b"\r\n"
        with self._lock:
            sock = self._down if way == TO_CLIENT else self._up
            if sock is None:
                raise harness.HarnessError("relay: no connection yet")
            self.units.append((way, data))
            sock.sendall(data)

    def replay(self, unit, way=TO_CLIENT):
        """Send a recorded unit again."""
        self.inject(unit, way)

    def find(self, way=None, contains=None):
        if isinstance(contains, str):
            contains = contains.encode("utf-8")
        with self._lock:
            return [u for w, u in self.units
                    if (way is None or w == way)
                    and (contains is None or contains in u)]

    def wait_unit(self, way=None, contains=None, timeout=harness.DEFAULT_TIMEOUT,
                  pred=None, since=0):
        """First unit (index >= since) that passed in `way` containing
        `contains` and matching pred(bytes)."""
        if isinstance(contains, str):
            contains = contains.encode("utf-8")
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.units):
                    w, u = self.units[i]
                    i += 1
                    if (way is None or w == way) and \
                            (contains is None or contains in u) and \
                            (pred is None or pred(u)):
                        return u
                left = deadline - time.monotonic()
                if left <= 0:
                    raise harness.HarnessError(
                        "relay: no unit %s containing %r within %.1fs"
                        % (way, contains, timeout))
                self._cond.wait(left)

    def mark(self):
        with self._lock:
            return len(self.units)

    def text(self, way=None):
        with self._lock:
            return b"".join(u for w, u in self.units
                            if way is None or w == way).decode("utf-8",
                                                                "replace")

    def close(self):
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


def relayed_client(h, protocol, user, rules=(), plugins=(harness.PLUGIN_ID,),
                   resource="test", **kw):
    """A harness client whose connection runs through a Relay (client.relay);
    not waited for (use h.wait_started)."""
    if protocol == "prpl-irc":
        server = h.ngircd()
        relay = Relay(server.port, "line", rules)
        username = "%s@%s" % (user, server.server)
        password = None
    else:
        server = h.prosody()
        relay = Relay(server.port, "xmpp", rules)
        username = server.jid(user, resource)
        password = server.passwords.get(user, harness.DEFAULT_PASSWORD)
    h._taps.append(relay)   # closed with the harness
    c = harness.Client(kw.pop("name", user), protocol, username, password,
                       relay.port, h.dir, plugins=plugins, **kw)
    c.tap = None
    c.relay = relay
    c.jid = user if protocol == "prpl-irc" else server.jid(user)
    h._clients.append(c)
    return c


# --------------------------------------------------------------------------
# Bare protocol clients
# --------------------------------------------------------------------------

def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def xml_unescape(s):
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


class XmppRaw:
    """A plain-socket XMPP client: SASL PLAIN, bind `resource`, then raw
    stanzas.  self.stanzas holds every stanza received after binding."""

    def __init__(self, port, user, password=harness.DEFAULT_PASSWORD,
                 resource="raw", domain=harness.XMPP_DOMAIN,
                 timeout=harness.DEFAULT_TIMEOUT * 2):
        self.jid = "%s@%s/%s" % (user, domain, resource)
        self.bare = "%s@%s" % (user, domain)
        self.domain = domain
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.framer = XmppFramer()
        self.pending = []
        self.stanzas = []
        self._cond = threading.Condition()
        self._eof = False
        self._open_stream()
        feats = self._next(lambda u: b"<stream:features" in u)
        if b"PLAIN" not in feats:
            raise harness.HarnessError("no SASL PLAIN: %r" % feats)
        cred = base64.b64encode(b"\0" + user.encode() + b"\0" +
                                password.encode()).decode()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                  "mechanism='PLAIN'>%s</auth>" % cred)
        r = self._next(lambda u: b"success" in u or b"failure" in u)
        if b"success" not in r:
            raise harness.HarnessError("SASL failed for %s: %r" % (user, r))
        self.framer = XmppFramer()
        self._open_stream()
        self._next(lambda u: b"<stream:features" in u)
        self.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:"
                  "ns:xmpp-bind'><resource>%s</resource></bind></iq>"
                  % xml_escape(resource))
        self._next(lambda u: b"id='b1'" in u or b'id="b1"' in u)
        self.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:"
                  "xml:ns:xmpp-session'/></iq>")
        self._next(lambda u: b"id='s1'" in u or b'id="s1"' in u)
        self.sock.settimeout(None)
        threading.Thread(target=self._read_loop, daemon=True).start()

    def _open_stream(self):
        self.send("<?xml version='1.0'?><stream:stream to='%s' version='1.0' "
                  "xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams'>"
                  % self.domain)

    def _next(self, pred):
        deadline = time.monotonic() + self.timeout
        while True:
            while self.pending:
                u = self.pending.pop(0)
                if pred(u):
                    return u
            if time.monotonic() > deadline:
                raise harness.HarnessError("%s: login stalled" % self.jid)
            data = self.sock.recv(65536)
            if not data:
                raise harness.HarnessError("%s: server closed" % self.jid)
            self.pending += self.framer.feed(data)

    def _read_loop(self):
        with self._cond:
            self.stanzas += self.pending
            self.pending = []
            self._cond.notify_all()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                units = self.framer.feed(data)
                with self._cond:
                    self.stanzas += units
                    self._cond.notify_all()
        except OSError:
            pass
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def send(self, xml):
        self.sock.sendall(xml.encode("utf-8") if isinstance(xml, str) else xml)

    def presence(self, status=None, to=None):
        attrs = " to='%s'" % xml_escape(to) if to else ""
        body = "<status>%s</status>" % xml_escape(status) if status else ""
        self.send("<presence%s>%s</presence>" % (attrs, body))

    def message(self, to, body, mtype="chat", extra=""):
        self.send("<message to='%s' type='%s'><body>%s</body>%s</message>"
                  % (xml_escape(to), mtype, xml_escape(body), extra))

    def mark(self):
        with self._cond:
            return len(self.stanzas)

    def wait(self, pred, since=0, timeout=harness.DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.stanzas):
                    u = self.stanzas[i]
                    i += 1
                    if pred(u.decode("utf-8", "replace")):
                        return u.decode("utf-8", "replace")
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise harness.HarnessError("%s: no matching stanza in %.1fs"
                                               % (self.jid, timeout))
                self._cond.wait(left)

    def bodies(self, since=0):
        """(from, body text) of every <message> with a body."""
        out = []
        with self._cond:
            units = list(self.stanzas[since:])
        for u in units:
            t = u.decode("utf-8", "replace")
            if not t.startswith("<message"):
                continue
            m = re.search(r"<body[^>]*>(.*?)</body>", t, re.S)
            f = re.search(r"""from=['"]([^'"]+)['"]""", t)
            if m:
                out.append((f.group(1) if f else None, xml_unescape(m.group(1))))
        return out

    def close(self):
        try:
            self.send("</stream:stream>")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class IrcRaw:
    """A plain-socket IRC client; self.lines holds every line received."""

    def __init__(self, port, nick, timeout=harness.DEFAULT_TIMEOUT * 2):
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.settimeout(None)
        self.lines = []
        self._cond = threading.Condition()
        self._eof = False
        threading.Thread(target=self._read_loop, daemon=True).start()
        self.send("NICK %s" % nick)
        self.send("USER %s 0 * :raw test client" % nick)
        self.wait(lambda l: " 001 " in l, timeout=timeout)

    def _read_loop(self):
        framer = LineFramer()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for line in framer.feed(data):
                    text = line.decode("utf-8", "replace").rstrip("\r\n")
                    if text.startswith("PING"):
                        self.send("PONG" + text[4:])
                    with self._cond:
                        self.lines.append(text)
                        self._cond.notify_all()
        except OSError:
            pass
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def privmsg(self, to, text):
        self.send("PRIVMSG %s :%s" % (to, text))

    def mark(self):
        with self._cond:
            return len(self.lines)

    def wait(self, pred, since=0, timeout=harness.DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise harness.HarnessError("%s: no matching line in %.1fs"
                                               % (self.nick, timeout))
                self._cond.wait(left)

    def close(self):
        try:
            self.send("QUIT :bye")
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

def b64url(b):
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def tool():
    """The built purple-e2ee command-line tool."""
    path = os.path.join(harness.BUILD_ROOT, "src", "purple-e2ee")
    if not os.access(path, os.X_OK):
        raise harness.HarnessError("purple-e2ee tool not built at %s" % path)
    return path


class Identity:
    """A P-256 identity made by `purple-e2ee keygen` in `workdir`."""

    def __init__(self, workdir, name):
        self.path = os.path.join(workdir, "key-%s.jwk" % name)
        subprocess.run([tool(), "keygen", "-o", self.path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=20)
        with open(self.path) as f:
            jwk = json.load(f)
        self.x, self.y = unb64url(jwk["x"]), unb64url(jwk["y"])
        self.kid = jwk["kid"]
        # PROTOCOL.md 2.2: the device id is the thumbprint's first 4 bytes
        self.device_id = unb64url(self.kid)[:4].hex()

    def compact(self, caps=1):
        return compact_set([(caps, self.x, self.y)])

    def seal(self, peer_jwk_path, text, account, peer, workdir=None,
             prekey=None, signing_key=None):
        """An armored protocol v2 envelope from this identity: a session
        start (X3DH) to the public key(s) in peer_jwk_path, made by
        `purple-e2ee seal`.  Without a prekey the start is mode 2; with
        `prekey` (a record, bytes or base64url) and `signing_key` (X||Y,
        bytes or base64url) the tool verifies the record and uses mode 1.
        `account` is this identity's account identifier, `peer` the
        recipient's ("<protocol>:<name>")."""
        args = [tool(), "seal", "--private", self.path, "--public",
                peer_jwk_path, "--account", account, "--peer", peer]
        if prekey is not None or signing_key is not None:
            args += ["--prekey", _b64arg(prekey),
                     "--signing-key", _b64arg(signing_key)]
        r = subprocess.run(args, input=text.encode("utf-8"),
                           capture_output=True, timeout=20)
        if r.returncode != 0:
            raise harness.HarnessError("seal failed: %s" % r.stderr.decode())
        return r.stdout.decode().strip()


def _b64arg(v):
    if v is None:
        raise ValueError("seal: --prekey and --signing-key go together")
    return v if isinstance(v, str) else b64url(v)


class CompactKey(tuple):
    """One key of a compact key set: the tuple (caps, x, y), and its
    protocol v2 attachments as attributes: `sign` (the signing key, X||Y,
    64 bytes) and `record` (the signed prekey record), both None for a key
    without them."""

    def __new__(cls, caps, x, y, sign=None, record=None):
        if (sign is None) != (record is None):
            raise ValueError("a key has both v2 attachments or neither")
        k = super().__new__(cls, (caps, x, y))
        k.sign, k.record = sign, record
        return k


def compact_set(keys):
    """PROTOCOL.md section 3 (src/e2ee-keyset.c): base64url of version 0x01
    || (caps || x || y)... when no key carries v2 data, else version 0x02
    || per key caps || x || y and, when caps has bit 0x02, sign (64) ||
    u8 len || record.  keys: CompactKey, (caps, x, y) or (caps, x, y,
    sign, record)."""
    keys = [k if isinstance(k, CompactKey) else CompactKey(*k) for k in keys]
    if not any(k.sign is not None for k in keys):
        return b64url(b"\x01" + b"".join(bytes([c]) + x + y for c, x, y in keys))
    out = b"\x02"
    for k in keys:
        c, x, y = k
        out += bytes([c]) + x + y
        if c & 0x02:
            if k.sign is None or len(k.sign) != 64 or not 0 < len(k.record) < 256:
                raise ValueError("a v2 key in a version 2 set needs its attachments")
            out += k.sign + bytes([len(k.record)]) + k.record
        elif k.sign is not None:
            raise ValueError("v2 attachments on a key without the v2 bit")
    return b64url(out)


def parse_compact(s):
    """[CompactKey] of a compact key set, version 0x01 (caps || x || y per
    key) or 0x02 (the same and, when caps has bit 0x02, sign (64) || u8 len
    || record).  ValueError for anything else."""
    raw = unb64url(s)
    if not raw or raw[0] not in (1, 2):
        raise ValueError("not a compact key set: %r" % s[:40])
    if raw[0] == 1:
        if (len(raw) - 1) % 65 or len(raw) == 1:
            raise ValueError("not a compact key set: %r" % s[:40])
        return [CompactKey(raw[i], raw[i + 1:i + 33], raw[i + 33:i + 65])
                for i in range(1, len(raw), 65)]
    out, i = [], 1
    while i < len(raw):
        if i + 65 > len(raw):
            raise ValueError("truncated compact key set: %r" % s[:40])
        caps, x, y = raw[i], raw[i + 1:i + 33], raw[i + 33:i + 65]
        i += 65
        sign = record = None
        if caps & 0x02:
            if i + 65 > len(raw) or i + 65 + raw[i + 64] > len(raw):
                raise ValueError("truncated v2 data in a compact key set: %r"
                                 % s[:40])
            sign, n = raw[i:i + 64], raw[i + 64]
            record = raw[i + 65:i + 65 + n]
            i += 65 + n
        out.append(CompactKey(caps, x, y, sign, record))
    if not out:
        raise ValueError("empty compact key set: %r" % s[:40])
    return out


def status_keys(message):
    """The keys of a `[e2ee:...]` tag in a status message ([] if none)."""
    m = re.search(r"\[e2ee:([A-Za-z0-9_-]+)\]", message or "")
    return parse_compact(m.group(1)) if m else []


def public_jwk_file(workdir, name, x, y):
    path = os.path.join(workdir, "pub-%s.jwk" % name)
    with open(path, "w") as f:
        json.dump({"kty": "EC", "crv": "P-256", "x": b64url(x),
                   "y": b64url(y)}, f)
    return path


def envelope_slots(armored):
    """The slots of a protocol v2 envelope as dicts {sender, recipient:
    device tags as 8 hex digits, type: 1 message / 2 start, mode: X3DH
    mode of a start (else None), message: the ratchet message bytes}, or
    None for anything else (a v1 envelope included).  Layout
    (src/e2ee-envelope-v2.h): byte 0 = 0x20 | 0x01 multi | 0x02 padded;
    single: byte 0 || one ratchet message; multi: byte 0 || n || IV (12) ||
    u32 L || body (L + 16) || n x (u16 len || ratchet message).  A ratchet
    message (src/e2ee-ratchet-wire.h): version 2, type, flags, sender tag
    at 3, recipient tag at 7, mode at 84 in a start."""
    if not armored.startswith("?E2E:"):
        return None
    try:
        data = unb64url(armored[5:].strip())
    except ValueError:
        return None
    if len(data) < 2 or data[0] & ~0x03 != 0x20:
        return None
    if not data[0] & 0x01:
        msgs = [data[1:]]
    else:
        n = data[1]
        if not 2 <= n <= 32 or len(data) < 18:
            return None
        pos = 18 + int.from_bytes(data[14:18], "big") + 16
        msgs = []
        for _ in range(n):
            if pos + 2 > len(data):
                return None
            ln = int.from_bytes(data[pos:pos + 2], "big")
            msgs.append(data[pos + 2:pos + 2 + ln])
            pos += 2 + ln
            if len(msgs[-1]) != ln:
                return None
        if pos != len(data):
            return None
    out = []
    for m in msgs:
        if len(m) < 84 + 12 + 16 or m[0] != 2 or m[1] not in (1, 2):
            return None
        out.append({"sender": m[3:7].hex(), "recipient": m[7:11].hex(),
                    "type": m[1], "mode": m[84] if m[1] == 2 else None,
                    "message": m})
    return out


def envelope_recipients(armored):
    """The recipient device tags (8 hex digits) of a protocol v2 envelope,
    one per slot, or None for another format (a v1 envelope included).  A
    device tag is the first 4 bytes of the key's thumbprint, so it equals
    Identity.device_id and device_id_of(x, y)."""
    slots = envelope_slots(armored)
    return None if slots is None else [sl["recipient"] for sl in slots]


def kid_of(x, y):
    """RFC 7638 thumbprint (base64url), the key's kid (PROTOCOL.md 2.2)."""
    import hashlib
    text = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (b64url(x), b64url(y))
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def device_id_of(x, y):
    return unb64url(kid_of(x, y))[:4].hex()


def presence_keys(relay, way=TO_SERVER, since=0, sender=None):
    """Every key set published in <presence> stanzas that passed the relay
    in `way` (list of key lists, in order), only those whose from= starts
    with `sender` if given."""
    with relay._lock:
        units = [u for w, u in relay.units[since:] if w == way]
    out = []
    for u in units:
        t = u.decode("utf-8", "replace")
        if sender is not None:
            f = re.search(r"""\sfrom=['"]([^'"]+)['"]""", t.split(">", 1)[0])
            if f is None or not f.group(1).startswith(sender):
                continue
        if t.lstrip().startswith("<presence"):
            keys = status_keys(xml_unescape(t))
            if keys:
                out.append(keys)
    return out


# P-256 (SEC 2): enough affine arithmetic to make many distinct valid public
# keys cheaply (successive multiples of a point), for flooding tests.
_P = 2 ** 256 - 2 ** 224 + 2 ** 192 + 2 ** 96 - 1
_A = _P - 3
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5


def _add(p, q):
    if p is None:
        return q
    (x1, y1), (x2, y2) = p, q
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        lam = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (lam * lam - x1 - x2) % _P
    return x3, (lam * (x1 - x3) - y1) % _P


def many_public_keys(n, start=7):
    """n distinct valid P-256 public keys as (caps, x, y) byte tuples:
    start*G, (start+1)*G, ... (public test points, nobody's identity)."""
    g = (_GX, _GY)
    q = None
    for _ in range(start):
        q = _add(q, g)
    out = []
    for _ in range(n):
        out.append((1, q[0].to_bytes(32, "big"), q[1].to_bytes(32, "big")))
        q = _add(q, g)
    return out
