"""Test harness: real libpurple clients against real servers on 127.0.0.1.

Starts Prosody and ngIRCd on free loopback ports in a private temporary
directory, drives e2ee-test-client processes over their stdin/stdout JSON
protocol, and cleans up every process and file it created.  Standard library
only.  See README.md in this folder for the overview.
"""

import atexit
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

PLUGIN_ID = "core-purple-e2ee"
PLUGIN_FILE = "purple-e2ee.so"
XMPP_DOMAIN = "localhost"
DEFAULT_PASSWORD = "test-password"
DEFAULT_TIMEOUT = 5.0
SKIP_EXIT_CODE = 77

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("E2EE_SOURCE_ROOT",
                             os.path.dirname(os.path.dirname(HERE)))
BUILD_ROOT = os.environ.get("E2EE_BUILD_ROOT", "")
CLIENT = os.environ.get("E2EE_TEST_CLIENT", "")
PLUGIN_DIR = os.environ.get("E2EE_PLUGIN_DIR", "")


class HarnessError(AssertionError):
    """A bounded wait ran out or a process misbehaved (a test failure)."""


# --------------------------------------------------------------------------
# Process bookkeeping: everything started here is killed at exit.
# --------------------------------------------------------------------------

_live_procs = []
_live_dirs = []
_live_uis = []  # Finch/Pidgin sessions: stopped by cleanup_all() as well
_live_lock = threading.Lock()


def _register_proc(proc):
    with _live_lock:
        _live_procs.append(proc)


def _stop_proc(proc, grace=2.0):
    """SIGTERM the process group, then SIGKILL it after `grace` seconds.

    Signals go to the group only while its leader (our child) is alive and
    unreaped, so the group id cannot have been reused by anything else.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    with _live_lock:
        if proc in _live_procs:
            _live_procs.remove(proc)


def cleanup_all():
    """Kill every process and remove every temp dir this module created."""
    with _live_lock:
        uis = list(_live_uis)
        _live_uis.clear()
    for u in uis:
        try:
            u.stop()
        except Exception:
            pass
    with _live_lock:
        procs = list(_live_procs)
    for p in procs:
        _stop_proc(p, grace=1.0)
    with _live_lock:
        dirs = list(_live_dirs)
        _live_dirs.clear()
    for d in dirs:
        if os.environ.get("E2EE_KEEP_TMP"):
            sys.stderr.write("harness: keeping %s\n" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(cleanup_all)


def _on_term(signum, frame):
    cleanup_all()
    os._exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_term)
    except ValueError:  # not the main thread
        pass


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=DEFAULT_TIMEOUT, proc=None):
    """Wait until 127.0.0.1:port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise HarnessError("server exited with %s before listening on %d"
                               % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise HarnessError("nothing listening on 127.0.0.1:%d after %.1fs"
                       % (port, timeout))


def bare(jid):
    """alice@localhost/res -> alice@localhost (IRC nicks pass through)."""
    return jid.split("/", 1)[0] if jid else jid


def which(name, extra=("/usr/sbin", "/usr/local/sbin", "/sbin")):
    path = shutil.which(name)
    if path is None:
        for d in extra:
            cand = os.path.join(d, name)
            if os.access(cand, os.X_OK):
                return cand
    return path


def _unprivileged():
    """(user, group) to run servers as when we are root, else (None, None)."""
    if os.geteuid() != 0:
        return None, None
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None, None
    return pw.pw_uid, pw.pw_gid


def _chown_tree(path, uid, gid):
    if uid is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def plugin_path():
    """Full path of the built plugin (may not exist)."""
    return os.path.join(PLUGIN_DIR, PLUGIN_FILE) if PLUGIN_DIR else ""


def plugin_available():
    p = plugin_path()
    return bool(p) and os.path.exists(p)


def plugin_is_sanitized():
    """True if the built plugin needs the AddressSanitizer runtime, which
    Debian's (uninstrumented) finch and pidgin binaries cannot provide."""
    p = plugin_path()
    if not p or not os.path.exists(p):
        return False
    try:
        out = subprocess.run(["ldd", p], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out


def skip_real_ui_if_sanitized():
    if plugin_is_sanitized():
        raise unittest.SkipTest(
            "the plugin is built with AddressSanitizer and Debian's finch/pidgin "
            "are not; the real-UI tests run in the normal build")


def servers_required():
    return bool(os.environ.get("E2EE_REQUIRE_SERVERS"))


def missing_servers(servers=("prosody", "ngircd")):
    """Names from `servers` whose programs are not installed."""
    programs = {"prosody": ("prosody", "prosodyctl"), "ngircd": ("ngircd",)}
    missing = []
    for s in servers:
        for prog in programs.get(s, (s,)):
            if which(prog) is None:
                missing.append(prog)
    return missing


# --------------------------------------------------------------------------
# Wire tap: a loopback TCP relay that records both directions.
# --------------------------------------------------------------------------

class WireTap:
    """Relay 127.0.0.1:self.port -> 127.0.0.1:target_port, recording bytes.

    to_server / to_client hold everything that passed in each direction,
    over all connections, so a test can check what the server saw.
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self._lock = threading.Lock()
        self._to_server = bytearray()
        self._to_client = bytearray()
        self.chunks = []  # (monotonic time, ">" to server / "<" to client, bytes)
        self._socks = []
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()

    def _accept_loop(self):
        while not self._closed:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port),
                                              timeout=DEFAULT_TIMEOUT)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            with self._lock:
                self._socks += [down, up]
            for src, dst, buf, way in ((down, up, self._to_server, ">"),
                                       (up, down, self._to_client, "<")):
                threading.Thread(target=self._pump, args=(src, dst, buf, way),
                                 daemon=True).start()

    def _pump(self, src, dst, buf, way):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    buf.extend(data)
                    self.chunks.append((time.monotonic(), way, data))
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def to_server(self):
        with self._lock:
            return bytes(self._to_server)

    @property
    def to_client(self):
        with self._lock:
            return bytes(self._to_client)

    def text(self):
        """Both directions decoded as UTF-8 (lossy), for substring checks."""
        return (self.to_server + b"\n" + self.to_client).decode(
            "utf-8", errors="replace")

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


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

def _prosody_encode(s):
    """Prosody's datamanager file-name encoding (non-alphanumerics as %xx)."""
    return "".join(c if c.isalnum() else "%%%02x" % ord(c)
                   for c in s.encode("utf-8").decode("latin-1"))


def _lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prosody:
    """A private Prosody on 127.0.0.1.  Accounts live on XMPP_DOMAIN.

    log_path is Prosody's debug log; with mod_stanza_debug it contains every
    stanza each c2s session sent and received (log_text() reads it).
    """

    def __init__(self, workdir, domain=XMPP_DOMAIN, timeout=DEFAULT_TIMEOUT,
                 mam=False, extra_modules=()):
        self.dir = os.path.join(workdir, "prosody")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.domain = domain
        self.port = free_port()
        self.config = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.passwords = {}
        modules = ["roster", "saslauth", "disco", "vcard", "offline",
                   "presence", "ping", "private", "stanza_debug"]
        if mam:
            modules.append("mam")
        # e.g. ("pep", "carbons"): off unless a test asks for them
        modules += [m for m in extra_modules if m not in modules]
        with open(self.config, "w") as f:
            f.write("""-- generated by tests/plugin/harness.py
pidfile = %(pid)s
data_path = %(data)s
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %(port)d }
s2s_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
log = { debug = %(log)s }
statistics = nil
modules_enabled = { %(modules)s }
modules_disabled = { "s2s", "tls" }
limits = { c2s = { rate = "10mb/s"; burst = "10s" } }
VirtualHost %(domain)s
""" % {"pid": _lua_str(os.path.join(self.dir, "prosody.pid")),
       "data": _lua_str(self.data_dir),
       "port": self.port,
       "log": _lua_str(self.log_path),
       "modules": ", ".join(_lua_str(m) for m in modules),
       "domain": _lua_str(domain)})
        self.uid, self.gid = _unprivileged()
        _chown_tree(self.dir, self.uid, self.gid)
        self.proc = None
        self._timeout = timeout

    def _run_kwargs(self):
        kw = {"start_new_session": True}
        if self.uid is not None:
            kw.update(user=self.uid, group=self.gid, extra_groups=[])
        return kw

    def jid(self, user, resource=None):
        j = "%s@%s" % (user, self.domain)
        return j + "/" + resource if resource else j

    def register(self, user, password=DEFAULT_PASSWORD):
        """Create an account with prosodyctl (works before or after start)."""
        r = subprocess.run([which("prosodyctl"), "--config", self.config,
                            "register", user, self.domain, password],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20, **self._run_kwargs())
        if r.returncode != 0:
            raise HarnessError("prosodyctl register %s failed: %s"
                               % (user, r.stdout.decode(errors="replace")))
        self.passwords[user] = password

    def register_many(self, users, password=DEFAULT_PASSWORD):
        """Create many accounts at once, before start(): writes Prosody's
        internal_plain account files directly (prosodyctl costs a Lua start
        per user)."""
        if self.proc is not None:
            raise HarnessError("register_many() must come before start()")
        folder = os.path.join(self.data_dir, _prosody_encode(self.domain),
                              "accounts")
        os.makedirs(folder, exist_ok=True)
        for u in users:
            with open(os.path.join(folder, _prosody_encode(u) + ".dat"),
                      "w") as f:
                f.write("return {\n\t[\"password\"] = %s;\n};\n"
                        % _lua_str(password))
            self.passwords[u] = password
        _chown_tree(self.data_dir, self.uid, self.gid)

    def befriend_many(self, a, others):
        """Mutual subscriptions between a and each of others, written in
        one pass per roster file."""
        for b in others:
            self._write_roster(b, {self.jid(a): self._roster_line(a)})
        self._write_roster(a, dict((self.jid(b), self._roster_line(b))
                                   for b in others))

    def _roster_line(self, contact):
        cj = self.jid(contact)
        return ('[%s] = { subscription = "both"; name = %s; '
                'groups = { ["Buddies"] = true; }; };'
                % (_lua_str(cj), _lua_str(contact)))

    def _write_roster(self, owner, new_items):
        path = self._roster_path(owner)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        items = {}
        if os.path.exists(path):
            for line in _read_text(path).splitlines():
                line = line.strip()
                if line.startswith('["') and "subscription" in line:
                    items[line[2:line.index('"]')]] = line
        items.update(new_items)
        with open(path, "w") as f:
            f.write("return {\n\t[false] = { version = 1; pending = {}; };\n")
            for line in items.values():
                f.write("\t" + line + "\n")
            f.write("};\n")
        if self.uid is not None:
            _chown_tree(self.data_dir, self.uid, self.gid)

    def befriend(self, a, b):
        """Mutual presence subscription between users a and b.

        Written straight into Prosody's roster store, so it must happen
        before either account signs on for the first time.
        """
        self._add_roster_item(a, b)
        self._add_roster_item(b, a)

    def _roster_path(self, user):
        return os.path.join(self.data_dir, _prosody_encode(self.domain),
                            "roster", _prosody_encode(user) + ".dat")

    def _add_roster_item(self, owner, contact):
        path = self._roster_path(owner)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        items = {}
        if os.path.exists(path):
            # harness-written rosters only: one item per line
            for line in _read_text(path).splitlines():
                line = line.strip()
                if line.startswith('["') and "subscription" in line:
                    items[line[2:line.index('"]')]] = line
        cj = self.jid(contact)
        items[cj] = ('[%s] = { subscription = "both"; name = %s; '
                     'groups = { ["Buddies"] = true; }; };'
                     % (_lua_str(cj), _lua_str(contact)))
        with open(path, "w") as f:
            f.write("return {\n\t[false] = { version = 1; pending = {}; };\n")
            for line in items.values():
                f.write("\t" + line + "\n")
            f.write("};\n")
        _chown_tree(os.path.join(self.data_dir), self.uid, self.gid)

    def start(self):
        self._log = open(os.path.join(self.dir, "prosody.out"), "wb")
        self.proc = subprocess.Popen([which("prosody"), "--config", self.config,
                                      "-F"], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     **self._run_kwargs())
        _register_proc(self.proc)
        try:
            wait_port(self.port, self._timeout, self.proc)
        except HarnessError as e:
            raise HarnessError("%s\n--- prosody output ---\n%s\n%s" % (
                e, _read_text(os.path.join(self.dir, "prosody.out"))[-3000:],
                self.log_text()[-3000:]))
        return self

    def log_text(self):
        return _read_text(self.log_path)

    def stop(self):
        if self.proc is not None:
            _stop_proc(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


class NgIRCd:
    """A private ngIRCd on 127.0.0.1 (no DNS/ident/PAM, no flood limits)."""

    def __init__(self, workdir, timeout=DEFAULT_TIMEOUT):
        self.dir = os.path.join(workdir, "ngircd")
        os.makedirs(self.dir)
        self.port = free_port()
        self.server = "127.0.0.1"
        self.config = os.path.join(self.dir, "ngircd.conf")
        self.log_path = os.path.join(self.dir, "ngircd.log")
        motd = os.path.join(self.dir, "motd")
        with open(motd, "w") as f:
            f.write("test server\n")
        self.uid, self.gid = _unprivileged()
        with open(self.config, "w") as f:
            f.write("""# generated by tests/plugin/harness.py
[Global]
\tName = irc.test.invalid
\tInfo = e2ee test server
\tListen = 127.0.0.1
\tPorts = %(port)d
\tPidFile = %(pid)s
\tMotdFile = %(motd)s
%(uid)s
[Limits]
\tMaxConnectionsIP = 0
\tMaxPenaltyTime = 0
\tPingTimeout = 120
\tPongTimeout = 20
[Options]
\tDNS = no
\tIdent = no
\tPAM = no
""" % {"port": self.port, "pid": os.path.join(self.dir, "ngircd.pid"),
       "motd": motd,
       "uid": ("\tServerUID = %d\n\tServerGID = %d" % (self.uid, self.gid))
       if self.uid is not None else ""})
        _chown_tree(self.dir, self.uid, self.gid)
        self.proc = None
        self._timeout = timeout

    def start(self):
        self._log = open(self.log_path, "wb")
        kw = {"start_new_session": True}
        if self.uid is not None:
            kw.update(user=self.uid, group=self.gid, extra_groups=[])
        self.proc = subprocess.Popen([which("ngircd"), "-n", "-f", self.config],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, **kw)
        _register_proc(self.proc)
        try:
            wait_port(self.port, self._timeout, self.proc)
        except HarnessError as e:
            raise HarnessError("%s\n--- ngircd output ---\n%s"
                               % (e, self.log_text()[-3000:]))
        return self

    def log_text(self):
        return _read_text(self.log_path)

    def stop(self):
        if self.proc is not None:
            _stop_proc(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

def _match(event, fields):
    for k, want in fields.items():
        have = event.get(k)
        if callable(want):
            if not want(have):
                return False
        elif have != want:
            return False
    return True


class Client:
    """One e2ee-test-client process (one libpurple account).

    All events are kept in self.events (a list of dicts, in arrival order).
    Every wait is bounded; a wait that runs out raises HarnessError with the
    last events, so the failing test shows what did happen.
    """

    def __init__(self, name, protocol, username, password, port,
                 workdir, server="127.0.0.1", plugins=(), passphrase=None,
                 alias=None, user_dir=None, plugin_dir=None, connect=True,
                 extra_args=()):
        if not CLIENT or not os.access(CLIENT, os.X_OK):
            raise HarnessError("E2EE_TEST_CLIENT is not set to the built "
                               "e2ee-test-client (got %r)" % CLIENT)
        self.name = name
        self.plugins = tuple(plugins)
        self.connect = connect
        self.protocol = protocol
        self.username = username
        self.user_dir = user_dir or os.path.join(workdir, "client-" + name)
        self.debug_log_path = os.path.join(workdir, "debug-%s.log" % name)
        self.stderr_path = os.path.join(workdir, "stderr-%s.log" % name)
        self.events = []
        self._cond = threading.Condition()
        self._seq = 0
        self._eof = False
        os.makedirs(self.user_dir, exist_ok=True)
        args = [CLIENT, "--user-dir", self.user_dir,
                "--protocol", protocol, "--username", username,
                "--server", server, "--port", str(port),
                "--debug-log", self.debug_log_path]
        if password is not None:
            args += ["--password", password]
        pdir = plugin_dir if plugin_dir is not None else PLUGIN_DIR
        if pdir:
            args += ["--plugin-dir", pdir]
        for p in plugins:
            args += ["--load-plugin", p]
        if passphrase is not None:
            args += ["--passphrase", passphrase]
        if alias is not None:
            args += ["--alias", alias]
        if not connect:
            args.append("--no-connect")
        args += list(extra_args)
        env = dict(os.environ)
        env["HOME"] = self.user_dir
        env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent"
        env.pop("DISPLAY", None)
        # libpurple's media code initialises GStreamer; scanning its plugins
        # into a fresh registry costs seconds per client and is not needed
        env["GST_PLUGIN_SYSTEM_PATH_1_0"] = os.path.join(self.user_dir,
                                                         "no-gst-plugins")
        env["GST_PLUGIN_PATH_1_0"] = ""
        env["GST_REGISTRY_UPDATE"] = "no"
        env.pop("PURPLE_UNSAFE_DEBUG", None)
        env.pop("PURPLE_VERBOSE_DEBUG", None)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env,
                                     start_new_session=True)
        _register_proc(self.proc)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- event stream -----------------------------------------------------

    def _read_loop(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "garbage", "text": line}
            ev["_t"] = time.monotonic()
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def mark(self):
        """Index of the next event: pass as since= to only see newer ones."""
        with self._cond:
            return len(self.events)

    def find(self, pred=None, since=0, **fields):
        """All events so far (from index since) matching pred and fields."""
        with self._cond:
            evs = self.events[since:]
        return [e for e in evs if _match(e, fields) and (pred is None or pred(e))]

    def wait_for(self, pred=None, timeout=DEFAULT_TIMEOUT, since=0,
                 what=None, **fields):
        """First event at index >= since matching pred(e) and fields.

        fields compare event members by equality, or call them if callable:
        wait_for(event="write", text="hi", flags=lambda f: "RECV" in f).
        Raises HarnessError after timeout seconds.
        """
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    i += 1
                    if _match(e, fields) and (pred is None or pred(e)):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(left)
        raise HarnessError("%s: no event %s within %.1fs%s\n%s" % (
            self.name, what or fields or "matching predicate", timeout,
            " (client exited %s)" % self.proc.poll() if self._eof else "",
            self.describe()))

    def wait_event(self, name, timeout=DEFAULT_TIMEOUT, since=0, pred=None,
                   **fields):
        return self.wait_for(pred=pred, timeout=timeout, since=since,
                             event=name, **fields)

    def describe(self, last=25):
        """The last events and stderr lines, for failure messages."""
        with self._cond:
            tail = self.events[-last:]
        lines = ["  " + json.dumps({k: v for k, v in e.items() if k != "_t"},
                                   ensure_ascii=False)[:400] for e in tail]
        err = _read_text(self.stderr_path)[-1500:]
        return ("--- last events of %s ---\n%s\n--- stderr ---\n%s"
                % (self.name, "\n".join(lines), err))

    # -- commands -----------------------------------------------------------

    def command(self, cmd, check=True, timeout=DEFAULT_TIMEOUT, **args):
        """Send one JSON command and wait for its ack; returns the ack.

        With check=True an ack with ok=false raises HarnessError.
        """
        with self._cond:
            self._seq += 1
            seq = self._seq
            since = len(self.events)
        msg = dict(args, cmd=cmd, seq=seq)
        line = json.dumps(msg, ensure_ascii=False) + "\n"
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise HarnessError("%s: client is gone\n%s" % (self.name,
                                                          self.describe()))
        ack = self.wait_for(timeout=timeout, since=since, event="ack", seq=seq,
                            what="ack for %s" % cmd)
        if check and not ack.get("ok"):
            raise HarnessError("%s: command %s failed: %s" % (
                self.name, cmd, ack.get("error")))
        ack["_since"] = since
        return ack

    def send(self, to, text, escape=False, **kw):
        """Type `text` into the IM window with `to` (purple_conv_im_send)."""
        return self.command("send", to=to, text=text, escape=escape, **kw)

    def raw(self, to, text, **kw):
        """serv_send_im: put `text` on the wire, bypassing all signals."""
        return self.command("raw", to=to, text=text, **kw)

    def cmd(self, to, line, timeout=DEFAULT_TIMEOUT):
        """Run a /command (without the slash) in the IM with `to`.

        Returns the cmd-result event: {"status": "ok"|"failed"|"not-found"|
        "wrong-args"|"wrong-prpl"|"wrong-type", "error": str|None, ...}.
        """
        ack = self.command("cmd", to=to, line=line, timeout=timeout)
        return self.wait_event("cmd-result", since=ack["_since"],
                               seq=ack["seq"], timeout=timeout)

    def add_buddy(self, name, alias=None):
        return self.command("add-buddy", to=name, alias=alias)

    def set_status(self, message, status=None):
        """Status message (XMPP: on 'available'; IRC: on 'away' by default)."""
        return self.command("set-status", text=message, status=status)

    def get_info(self, who, timeout=DEFAULT_TIMEOUT, pred=None):
        """serv_get_info; returns the first userinfo event for `who`
        (matching pred if given)."""
        ack = self.command("get-info", to=who)
        return self.wait_for(pred=pred, event="userinfo", since=ack["_since"],
                             timeout=timeout,
                             who=lambda w: bare(w) == bare(who))

    def get_status(self, who):
        """Current presence of a buddy: the 'status' event."""
        ack = self.command("get-status", to=who)
        return self.wait_event("status", since=ack["_since"], seq=ack["seq"])

    def close_conversation(self, who):
        return self.command("close", to=who)

    def action(self, label, plugin_id=PLUGIN_ID):
        """Run a plugin action (Tools/Plugins menu entry) by its label."""
        return self.command("action", id=plugin_id, label=label)

    def set_pref(self, path, value):
        if isinstance(value, bool):
            value = "true" if value else "false"
        return self.command("set-pref", path=path, value=str(value))

    def get_pref(self, path):
        ack = self.command("get-pref", path=path)
        return self.wait_event("pref", since=ack["_since"],
                               seq=ack["seq"])["value"]

    def load_plugin(self, plugin_id=PLUGIN_ID):
        return self.command("load-plugin", id=plugin_id)

    def unload_plugin(self, plugin_id=PLUGIN_ID):
        return self.command("unload-plugin", id=plugin_id)

    def answer_action(self, choice="default"):
        """Future action requests: 'default', 'cancel' or an index."""
        return self.command("answer-action", value=str(choice))

    def answer_input(self, text=None, cancel=False):
        """Future input requests: text, cancel, or None for the default
        (the --passphrase, else the dialog's default value)."""
        if cancel:
            return self.command("answer-input", value="cancel")
        if text is None:
            return self.command("answer-input", value="default")
        return self.command("answer-input", value="text", text=text)

    def signoff(self):
        return self.command("signoff")

    def signon(self, wait=True, timeout=DEFAULT_TIMEOUT):
        ack = self.command("signon")
        if wait:
            self.wait_event("signed-on", since=ack["_since"], timeout=timeout)
        return ack

    def ping(self):
        return self.command("ping")

    # -- conveniences -------------------------------------------------------

    def wait_signed_on(self, timeout=DEFAULT_TIMEOUT):
        def done(e):
            if e.get("event") == "error" and e.get("source") == "connection":
                raise HarnessError("%s: connection error: %s\n%s" % (
                    self.name, e.get("message"), self.describe()))
            return e.get("event") == "signed-on"
        return self.wait_for(pred=done, timeout=timeout, what="signed-on")

    def writes(self, since=0, flag=None, who=None):
        """Conversation writes (optionally only with a flag / from who)."""
        return self.find(since=since, event="write",
                         pred=lambda e: (flag is None or flag in e["flags"]) and
                         (who is None or bare(e.get("who")) == bare(who)))

    def wait_message(self, text=None, who=None, flag="RECV", since=0,
                     timeout=DEFAULT_TIMEOUT, contains=None, pred=None):
        """A conversation write with `flag` (default RECV; None for any)
        whose text equals `text` and/or contains `contains`, from or in the
        conversation with `who` (bare-JID compared), and matching pred(e)."""
        def ok(e):
            if pred is not None and not pred(e):
                return False
            if flag is not None and flag not in e["flags"]:
                return False
            if who is not None and bare(e.get("who")) != bare(who) and \
                    bare(e.get("conv")) != bare(who):
                return False
            if text is not None and e.get("text") != text:
                return False
            if contains is not None and contains not in (e.get("text") or ""):
                return False
            return True
        return self.wait_for(pred=ok, since=since, timeout=timeout,
                             event="write",
                             what="write %s text=%r contains=%r from %s"
                             % (flag, text, contains, who))

    def wait_buddy_status(self, who, message=None, since=0,
                          timeout=DEFAULT_TIMEOUT, pred=None):
        """A buddy-status event for `who` (bare compared), with `message`
        if given."""
        def ok(e):
            if bare(e.get("who")) != bare(who):
                return False
            if message is not None and e.get("message") != message:
                return False
            return pred is None or pred(e)
        return self.wait_for(pred=ok, since=since, timeout=timeout,
                             event="buddy-status",
                             what="buddy-status of %s message=%r"
                             % (who, message))

    def wait_buddy_online(self, who, timeout=DEFAULT_TIMEOUT):
        """Until `who` is online on our buddy list; returns the status event.
        Checks the current state, so it also works if the presence arrived
        before the call."""
        deadline = time.monotonic() + timeout
        while True:
            since = self.mark()
            st = self.get_status(who)
            if st.get("online"):
                return st
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError("%s: %s not online after %.1fs\n%s" % (
                    self.name, who, timeout, self.describe()))
            try:
                self.wait_for(since=since, timeout=left,
                              pred=lambda e: e["event"] in (
                                  "buddy-status", "buddy-signed-on") and
                              bare(e.get("who")) == bare(who))
            except HarnessError:
                pass

    def errors(self, since=0):
        """error events and GLib criticals/warnings seen so far."""
        return self.find(since=since, pred=lambda e: e["event"] == "error" or (
            e["event"] == "log" and e.get("level") in ("critical", "error",
                                                        "warning")))

    def debug_log(self):
        """Everything libpurple (and the plugin) wrote with purple_debug_*."""
        return _read_text(self.debug_log_path)

    def alive(self):
        return self.proc.poll() is None

    def vm_kib(self, field="VmHWM"):
        """A memory figure of the client process from /proc (kB), e.g.
        VmHWM (peak resident) or VmRSS; 0 if unavailable."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """Quit cleanly (purple_core_quit, plugin unload); kill if stuck.
        Returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd":"quit"}\n')
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _stop_proc(self.proc)
        self._reader.join(timeout=2)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        return self.proc.returncode


# --------------------------------------------------------------------------
# Real UIs: Finch in a private tmux server, Pidgin under xvfb-run
# --------------------------------------------------------------------------

def _ui_env(home):
    env = dict(os.environ)
    env["HOME"] = home
    env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent"
    env["GST_PLUGIN_SYSTEM_PATH_1_0"] = os.path.join(home, "no-gst-plugins")
    env["GST_PLUGIN_PATH_1_0"] = ""
    env["GST_REGISTRY_UPDATE"] = "no"
    env.pop("PURPLE_UNSAFE_DEBUG", None)
    return env


def prepare_ui_home(home, ui, protocol, username, password, port,
                    plugins=(), server="127.0.0.1", timeout=DEFAULT_TIMEOUT):
    """Write a purple user dir for Finch ("finch") or Pidgin ("pidgin").

    The account is set up as the test client does it and auto-logs in for
    that UI; `plugins` (ids) are linked into home/plugins and put in the UI's
    saved "loaded" list; IMs are logged as text under home/logs.
    """
    plugdir = os.path.join(home, "plugins")
    os.makedirs(plugdir, exist_ok=True)
    if plugins:
        if not plugin_available():
            raise HarnessError("plugin not built at %s" % plugin_path())
        link = os.path.join(plugdir, PLUGIN_FILE)
        if not os.path.exists(link):
            os.symlink(plugin_path(), link)
    args = [CLIENT, "--user-dir", home, "--plugin-dir", plugdir,
            "--protocol", protocol, "--username", username,
            "--server", server, "--port", str(port), "--prepare-ui", ui]
    if password is not None:
        args += ["--password", password]
    for p in plugins:
        args += ["--load-plugin", p]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=_ui_env(home),
                       timeout=timeout * 2)
    out = r.stdout.decode("utf-8", errors="replace")
    if r.returncode != 0 or '"prepared"' not in out:
        raise HarnessError("preparing %s home failed (%s):\n%s"
                           % (ui, r.returncode, out))
    return home


class _UiSession:
    home = None

    def conversation_logs(self):
        """Text of every IM log the UI wrote (home/logs/**/*.txt)."""
        parts = []
        for root, dirs, files in os.walk(os.path.join(self.home, "logs")):
            for f in sorted(files):
                parts.append(_read_text(os.path.join(root, f)))
        return "\n".join(parts)

    def debug_log(self):
        return _read_text(self.debug_path)

    def wait_log(self, pred, timeout=DEFAULT_TIMEOUT, what="log text",
                 source=None):
        """Poll a text source (default: conversation logs) until pred(text)."""
        source = source or self.conversation_logs
        deadline = time.monotonic() + timeout
        while True:
            text = source()
            if pred(text):
                return text
            if time.monotonic() >= deadline:
                raise HarnessError("%s: no %s within %.1fs; last 1500 chars:"
                                   "\n%s" % (self.name, what, timeout,
                                             text[-1500:]))
            time.sleep(0.1)


class FinchSession(_UiSession):
    """finch -c HOME inside a private tmux server (its own socket)."""

    def __init__(self, name, home, width=200, height=50):
        if which("tmux") is None or which("finch") is None:
            raise HarnessError("tmux or finch is not installed")
        self.name = name
        self.home = home
        self.debug_path = os.path.join(home, "finch-debug.log")
        self.socket = "e2ee-%d-%s" % (os.getpid(), name)
        cmd = "exec finch -c %s -d 2>>%s" % (_shquote(home),
                                            _shquote(self.debug_path))
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d",
                        "-s", "main", "-x", str(width), "-y", str(height), cmd],
                       check=True, env=_ui_env(home), timeout=10)
        out = subprocess.run(["tmux", "-L", self.socket, "display-message",
                              "-p", "-t", "main", "#{pane_pid}"],
                             stdout=subprocess.PIPE, timeout=10)
        self.pid = int(out.stdout.decode().strip() or 0)

    def keys(self, *keys, literal=False):
        """tmux send-keys (e.g. keys("hello", "Enter"), keys("M-a"))."""
        args = ["tmux", "-L", self.socket, "send-keys", "-t", "main"]
        if literal:
            args.append("-l")
        subprocess.run(args + list(keys), check=True, timeout=10)

    def type(self, text):
        self.keys(text, literal=True)

    def screen(self):
        """The visible screen as text."""
        r = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p",
                            "-t", "main"], stdout=subprocess.PIPE, timeout=10)
        return r.stdout.decode("utf-8", errors="replace")

    def wait_screen(self, pred, timeout=DEFAULT_TIMEOUT, what="screen text"):
        return self.wait_log(pred, timeout, what, source=self.screen)

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=10)
        deadline = time.monotonic() + 3
        while self.pid and self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid and self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


class XServer:
    """A private Xvfb (no TCP, no other clients), for driving a GUI with
    xdotool and taking screenshots.  self.display is e.g. ":3"."""

    def __init__(self, size="1024x768x24", timeout=DEFAULT_TIMEOUT):
        if which("Xvfb") is None:
            raise HarnessError("Xvfb is not installed")
        r, w = os.pipe()
        try:
            # -displayfd: Xvfb picks a free display and writes its number
            self.proc = subprocess.Popen(
                [which("Xvfb"), "-displayfd", str(w), "-nolisten", "tcp",
                 "-screen", "0", size],
                pass_fds=(w,), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            os.close(w)
        _register_proc(self.proc)
        number = b""
        deadline = time.monotonic() + timeout
        try:
            while not number.endswith(b"\n") and time.monotonic() < deadline:
                ready, _, _ = select.select([r], [], [], 0.2)
                if ready:
                    chunk = os.read(r, 16)
                    if not chunk:
                        break
                    number += chunk
        finally:
            os.close(r)
        if not number.strip().isdigit():
            self.stop()
            raise HarnessError("Xvfb did not report a display (%r)" % number)
        self.display = ":" + number.decode().strip()

    def env(self, base=None):
        env = dict(base if base is not None else os.environ)
        env["DISPLAY"] = self.display
        env.pop("XAUTHORITY", None)
        return env

    def run(self, *args, timeout=10, check=True):
        """A command on this display (xdotool, import, ...); its stdout."""
        r = subprocess.run(list(args), env=self.env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise HarnessError("%s failed (%d): %s" % (
                " ".join(args), r.returncode,
                r.stderr.decode("utf-8", "replace")[-500:]))
        return r.stdout.decode("utf-8", "replace")

    def screenshot(self, path, window="root"):
        """The screen (or one window, by id) as a PNG (ImageMagick's
        import)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.run("import", "-window", window, path, timeout=30)
        return path

    def stop(self):
        _stop_proc(self.proc)


class PidginSession(_UiSession):
    """xvfb-run -a pidgin -c HOME -d (debug output in debug_log()).

    With own_display=True Pidgin runs on an XServer of its own instead
    (self.x), which xdotool can drive: windows(), type_into(), screenshot().
    """

    def __init__(self, name, home, own_display=False):
        if which("xvfb-run") is None or which("pidgin") is None:
            raise HarnessError("xvfb-run or pidgin is not installed")
        self.name = name
        self.home = home
        self.x = None
        self.debug_path = os.path.join(home, "pidgin-debug.log")
        self._out = open(self.debug_path, "ab")
        env = _ui_env(home)
        env.pop("DISPLAY", None)
        if own_display:
            self.x = XServer()
            argv = [which("pidgin"), "-c", home, "-d"]
            env = self.x.env(env)
        else:
            argv = [which("xvfb-run"), "-a", which("pidgin"), "-c", home, "-d"]
        self.proc = subprocess.Popen(argv,
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        _register_proc(self.proc)

    def alive(self):
        return self.proc.poll() is None

    def _need_x(self):
        if self.x is None:
            raise HarnessError("start Pidgin with own_display=True for this")
        if which("xdotool") is None:
            raise HarnessError("xdotool is not installed")

    def windows(self, name_regex):
        """Ids of visible top-level windows whose title matches."""
        self._need_x()
        out = self.x.run("xdotool", "search", "--onlyvisible", "--name",
                         name_regex, check=False)
        return [w for w in out.split() if w.isdigit()]

    def wait_window(self, name_regex, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            found = self.windows(name_regex)
            if found:
                return found[0]
            if not self.alive() or time.monotonic() >= deadline:
                raise HarnessError("%s: no window %r within %.1fs (alive: %s)"
                                   % (self.name, name_regex, timeout,
                                      self.alive()))
            time.sleep(0.2)

    def type_into(self, window, text, enter=True):
        """Focus `window` (an id) and type `text` as key presses."""
        self._need_x()
        self.x.run("xdotool", "windowfocus", "--sync", window)
        self.x.run("xdotool", "type", "--delay", "15", "--", text,
                   timeout=30 + len(text) // 10)
        if enter:
            self.x.run("xdotool", "key", "Return")

    def screenshot(self, path, window="root"):
        self._need_x()
        return self.x.screenshot(path, window)

    def stop(self):
        _stop_proc(self.proc, grace=3.0)
        if self.x is not None:
            self.x.stop()
        if self._out:
            self._out.close()
            self._out = None


# --------------------------------------------------------------------------
# The harness object a test uses
# --------------------------------------------------------------------------

class Harness:
    """Owns one temp dir, the servers and clients of one test.

    Use as a context manager or call close(); TestCase helper:
        self.h = harness.Harness(); self.addCleanup(self.h.close)
    """

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="e2ee-plugin-test-")
        os.chmod(self.dir, 0o755)  # servers run as nobody
        with _live_lock:
            _live_dirs.append(self.dir)
        self._servers = []
        self._clients = []
        self._taps = []
        self._uis = []
        self._prosody = None
        self._ngircd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- servers --

    def prosody(self, users=("alice", "bob"), password=DEFAULT_PASSWORD,
                befriend=True, mam=False, extra_modules=()):
        """Start Prosody with `users` registered; with befriend=True every
        pair of them has a mutual ("both") subscription already."""
        if self._prosody is not None:
            return self._prosody
        p = Prosody(self.dir, mam=mam, extra_modules=extra_modules)
        for u in users:
            p.register(u, password)
        if befriend:
            for i, a in enumerate(users):
                for b in users[i + 1:]:
                    p.befriend(a, b)
        p.start()
        self._servers.append(p)
        self._prosody = p
        return p

    def ngircd(self):
        if self._ngircd is not None:
            return self._ngircd
        n = NgIRCd(self.dir).start()
        self._servers.append(n)
        self._ngircd = n
        return n

    def tap(self, target_port):
        t = WireTap(target_port)
        self._taps.append(t)
        return t

    # -- clients --

    def xmpp_client(self, user, plugins=(), passphrase=None, resource="test",
                    password=None, user_dir=None, tap=False, wait=True,
                    timeout=DEFAULT_TIMEOUT, alias=None, connect=True,
                    name=None):
        """A client for user@localhost/resource on this harness' Prosody.

        plugins: ids to load before sign-on (e.g. [harness.PLUGIN_ID]).
        tap=True routes it through a WireTap (client.tap).
        user_dir: reuse a purple user dir (restart with persisted state).
        wait=True waits for the plugin load events and signed-on.
        """
        p = self.prosody()
        port = p.port
        wt = None
        if tap:
            wt = self.tap(p.port)
            port = wt.port
        if password is None:
            password = p.passwords.get(user, DEFAULT_PASSWORD)
        c = Client(name or user, "prpl-jabber", p.jid(user, resource), password,
                   port, self.dir, plugins=plugins, passphrase=passphrase,
                   user_dir=user_dir, alias=alias, connect=connect)
        c.tap = wt
        c.jid = p.jid(user)
        self._clients.append(c)
        if wait:
            self._wait_started(c, plugins, connect, timeout)
        return c

    def xmpp_multi(self, users, plugins=(), resource="test", name=None,
                   extra_args=(), wait=True, timeout=DEFAULT_TIMEOUT):
        """One client process holding an account for each of `users`
        (--extra-account); commands pick one with account=<full JID>
        (Client.accounts lists them; the first is the default)."""
        p = self.prosody()
        jids = [p.jid(u, resource) for u in users]
        args = []
        for j in jids[1:]:
            args += ["--extra-account", j]
        args += list(extra_args)
        c = Client(name or ("multi-" + users[0]), "prpl-jabber", jids[0],
                   p.passwords.get(users[0], DEFAULT_PASSWORD), p.port,
                   self.dir, plugins=plugins, extra_args=args)
        c.tap = None
        c.jid = p.jid(users[0])
        c.accounts = jids
        self._clients.append(c)
        if wait:
            self.wait_multi(c, timeout=timeout)
        return c

    def wait_multi(self, c, timeout=DEFAULT_TIMEOUT):
        """Until every account of an xmpp_multi client is signed on."""
        c.wait_event("ready", timeout=timeout)
        for pid in c.plugins:
            ev = c.wait_event("plugin", id=pid, timeout=timeout)
            if not ev.get("loaded"):
                raise HarnessError("%s: plugin %s did not load: %s" % (
                    c.name, pid, ev.get("error")))
        want = set(bare(j) for j in c.accounts)
        deadline = time.monotonic() + timeout
        while True:
            have = set(bare(e.get("account")) for e in c.find(event="signed-on"))
            if want <= have:
                return
            errs = c.find(event="error", source="connection")
            if errs:
                raise HarnessError("%s: connection error: %s" % (c.name, errs[0]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError("%s: %d of %d accounts signed on\n%s" % (
                    c.name, len(want & have), len(want), c.describe()))
            try:
                c.wait_for(since=c.mark(), timeout=min(left, 1.0),
                           event="signed-on")
            except HarnessError:
                pass

    def irc_client(self, nick, plugins=(), passphrase=None, user_dir=None,
                   tap=False, wait=True, timeout=DEFAULT_TIMEOUT, connect=True,
                   name=None):
        """A client for IRC nick on this harness' ngIRCd (nick@127.0.0.1)."""
        n = self.ngircd()
        port = n.port
        wt = None
        if tap:
            wt = self.tap(n.port)
            port = wt.port
        c = Client(name or nick, "prpl-irc", "%s@%s" % (nick, n.server), None,
                   port, self.dir, plugins=plugins, passphrase=passphrase,
                   user_dir=user_dir, connect=connect)
        c.tap = wt
        c.jid = nick
        self._clients.append(c)
        if wait:
            self._wait_started(c, plugins, connect, timeout)
        return c

    def wait_started(self, *clients, timeout=DEFAULT_TIMEOUT):
        """Finish starting clients made with wait=False (start several in
        parallel, then wait for all of them)."""
        for c in clients:
            self._wait_started(c, c.plugins, c.connect, timeout)

    def _wait_started(self, c, plugins, connect, timeout):
        c.wait_event("ready", timeout=timeout)
        for pid in plugins:
            ev = c.wait_event("plugin", id=pid, timeout=timeout)
            if not ev.get("loaded"):
                raise HarnessError("%s: plugin %s did not load: %s\n%s" % (
                    c.name, pid, ev.get("error"), c.describe()))
        if connect:
            c.wait_signed_on(timeout=timeout)

    def restart(self, client, **kw):
        """Stop `client` and start it again on the same user dir."""
        client.stop()
        self._clients.remove(client)
        user = client.name
        if client.protocol == "prpl-irc":
            return self.irc_client(client.jid, user_dir=client.user_dir,
                                   name=user, **kw)
        local, _, rest = client.username.partition("@")
        resource = rest.partition("/")[2] or "test"
        return self.xmpp_client(local, user_dir=client.user_dir,
                                resource=resource, name=user, **kw)

    # -- real UIs --

    def _ui_home(self, ui, user, protocol, plugins):
        home = os.path.join(self.dir, "%s-%s" % (ui, user))
        if protocol == "prpl-irc":
            n = self.ngircd()
            prepare_ui_home(home, ui, protocol, "%s@%s" % (user, n.server),
                            None, n.port, plugins=plugins)
        else:
            p = self.prosody()
            prepare_ui_home(home, ui, protocol, p.jid(user, ui),
                            p.passwords.get(user, DEFAULT_PASSWORD), p.port,
                            plugins=plugins)
        return home

    def finch(self, user, plugins=(), protocol="prpl-jabber"):
        """Finch signed in as `user` (resource "finch"), in tmux.
        Readiness: wait for its presence on a test client's buddy list."""
        skip_real_ui_if_sanitized()
        s = FinchSession(user, self._ui_home("finch", user, protocol, plugins))
        self._uis.append(s)
        with _live_lock:
            _live_uis.append(s)
        return s

    def pidgin(self, user, plugins=(), protocol="prpl-jabber",
               own_display=False):
        """Pidgin signed in as `user` (resource "pidgin"), under xvfb-run,
        or with own_display=True on a private Xvfb xdotool can drive."""
        skip_real_ui_if_sanitized()
        s = PidginSession(user, self._ui_home("pidgin", user, protocol,
                                              plugins),
                          own_display=own_display)
        self._uis.append(s)
        with _live_lock:
            _live_uis.append(s)
        return s

    def close(self):
        for u in self._uis:
            try:
                u.stop()
            except Exception:
                pass
            with _live_lock:
                if u in _live_uis:
                    _live_uis.remove(u)
        self._uis = []
        for c in self._clients:
            try:
                c.stop(timeout=3)
            except Exception:
                _stop_proc(c.proc)
        self._clients = []
        for t in self._taps:
            t.close()
        self._taps = []
        for s in self._servers:
            s.stop()
        self._servers = []
        with _live_lock:
            if self.dir in _live_dirs:
                _live_dirs.remove(self.dir)
        if os.environ.get("E2EE_KEEP_TMP"):
            sys.stderr.write("harness: keeping %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Entry point for test files
# --------------------------------------------------------------------------

def main(servers=("prosody", "ngircd"), need_plugin=False):
    """Run the unittest module of the caller, with meson's exit codes.

    Exit 77 (skipped) only when a server program in `servers` is missing and
    E2EE_REQUIRE_SERVERS is unset; with it set, that is a failure (exit 1).
    need_plugin=True fails (exit 1) when the built plugin is missing.
    """
    missing = missing_servers(servers)
    if missing:
        msg = "missing server programs: %s" % ", ".join(missing)
        if servers_required():
            sys.stderr.write("FAIL: %s (E2EE_REQUIRE_SERVERS is set)\n" % msg)
            sys.exit(1)
        sys.stderr.write("SKIP: %s\n" % msg)
        sys.exit(SKIP_EXIT_CODE)
    if not CLIENT or not os.access(CLIENT, os.X_OK):
        sys.stderr.write("FAIL: E2EE_TEST_CLIENT not set or not executable\n")
        sys.exit(1)
    if need_plugin and not plugin_available():
        sys.stderr.write("FAIL: plugin not built at %s\n" % plugin_path())
        sys.exit(1)
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    cleanup_all()
    sys.exit(0 if prog.result.wasSuccessful() else 1)
