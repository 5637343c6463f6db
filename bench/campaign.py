#!/usr/bin/env python3
"""Bad-input campaign against a release binary (issue 9; figures in README.md, Reliability).

Starts sandboxd bounded (RLIMIT_AS, no core dumps), then fires N fuzzed requests at every endpoint from two client threads (one
for actions, one for everything else) and counts:

  * 5xx       answers with a status >= 500 (a 5xx ends the client's session)
  * crashes   the server process gone (it is restarted, the last requests are kept)
  * hangs     no answer within the action's deadline + 5 s (an action sent from the
              second thread may first wait for the action lock, behind at most one action
              of the first: its bound adds the longest of those); then a probe action
              tells whether the server is wedged; a wedged server is restarted
  * slowest   the ten slowest answers, each with the three requests its thread sent before
  * survivors processes still alive 5 s after the server was stopped (SIGTERM) that carry
              the campaign's marker in their environment, i.e. descendants of the server,
              whatever session or group they moved to
  * RSS peak  of the server (VmHWM) and of the server with all its descendants (sampled)

Inputs: actions of every kind built from templates with every field's value swapped for
other JSON types or mutated; raw bodies truncated, flipped, deeply nested, huge, not
UTF-8; uploads with hostile names, destinations and zips (absolute, `..`, symlinks,
duplicates, corrupt, bombs by ratio and by entry count); downloads, listings and the other
endpoints with hostile queries, wrong methods and wrong keys.

Safety: every path that writes is inside the campaign's temp dir; commands and cells come
from a harmless corpus with mutations from an alphabet without `/`, `.` and `~`, and any
that then names a dangerous word is not sent; browsing only goes to about:, data: and
file: URLs inside the temp dir and to a closed loopback port. The defects that issue 9
already lists (reads of /dev/zero and FIFOs, `setsid` daemons, killed kernels) are left
out unless --known-defects is given, so that the figures show what is new.

  bench/campaign.py --bin target/release/sandboxd --requests 20000 --seed 1 [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import warnings

import requests

KEY = "campaign-key"
UPLOAD_LIMIT = 64 << 20
NO_CHANGE_TIMEOUT = 3
ADDRESS_SPACE = 8 << 30

COMMANDS = [
    "echo hello", "ls -la", "pwd", "true", "false", "exit 3", "echo $?", "seq 1 2000",
    "printf 'a\\tb\\n'", "for i in 1 2 3; do echo $i; done", "x=1; echo $x", "echo 'unbalanced",
    "cat nonexistent", "ls *.txt | wc -l", "yes | head -n 50000", "sleep 1", "echo a && echo b",
    "echo a\necho b", "cat <<EOF\nheredoc\nEOF", "env | wc -l", "echo $((2**40))", "ulimit -a",
    "printf '\\xff\\xfe\\x00\\x01'", "head -c 200000 /dev/urandom | base64 | head -n 3000",
    "python3 -c 'print(1+1)'", "(sleep 60 &)", "nohup sleep 60 > /dev/null 2>&1 &",
    "sleep 30 & echo $!", "cat", "read line", "C-c", "C-d", "C-z", "", " ", "set -x", "set +x",
    "mkdir -p sub/dir && touch sub/dir/f", "echo x > f.txt", "grep -r hello . | head",
    "trap 'echo trapped' INT", "stty -echo", "stty echo", "tput cols", "echo -e '\\e[31mred\\e[0m'",
    "printf '%s' \"$(seq 1 100)\"", "if true; then echo y; fi", "function f { echo f; }; f",
]
CELLS = [
    "print(1)", "1/0", "x = [i for i in range(1000)]\nlen(x)", "import sys; print(sys.version)",
    "print('a' * 100000)", "def f(:\n  pass", "while False: pass", "raise ValueError('v')",
    "import time; time.sleep(0.5)", "input()", "%pwd", "!echo shell", "%%bash\necho b",
    "print(file_editor)", "for i in range(3): print(i)", "import math; math.sqrt(-1)",
    "'\\x00'", "print('\\ud800'.encode('utf-8', 'surrogatepass'))", "help", "exit()",
]
BROWSER_ACTIONS = [
    "noop()", "noop(100)", "scroll(0, 200)", "click('1')", "fill('2', 'text')", "go_back()",
    "go_forward()", "new_tab()", "tab_close()", "tab_focus(0)", "press('1', 'Enter')",
    "keyboard_type('hello')", "mouse_click(10, 10)", "select_option('3', 'a')", "hover('4')",
    "send_msg_to_user('hi')", "click(", "f(" + "[" * 150, "drag_and_drop('1', '2')",
    "upload_file('1', '/nonexistent')", "report_infeasible('x')",
]
# Words that a mutated command or cell must not contain to be sent.
DANGEROUS = ("rm", "kill", "cd", "dd", "mv", "chmod", "chown", "shutdown", "reboot", "mkfs",
             "os", "subprocess", "shutil", "open", "system", "setsid", "sudo", "su ", "passwd",
             ">", "curl", "wget", "http", "nc", "ssh", "ip", "mount", "eval", "exec", "pkill",
             "sync", "crontab", "fork", "disown", "renice", "iptables", "tee")
MUTATION_ALPHABET = "abcxyz019 \t\n'\"`$(){}[];|&*?!#=-+,:\\@^%\x00\x1b\u00e9\u4e2d"
JSON_VALUES = [None, True, False, 0, -1, 1, 2.5, -1e300, 1e300, 18446744073709551615, "", "x",
               "\x00", "../..", "\udcff", [], [1, 2], [[], {}], {}, {"a": 1}, "C-c", "-1"]


def deadline_of(body) -> float | None:
    """When an answer to `body` (a decoded request body) is due, as the server documents it
    (src/actions/deadline.rs): the action's timeout when it is a positive number of seconds up
    to a day, else 120 s, plus the kind's margin; browsing waits at least the 30 s step
    timeout. A hang is no answer 5 s after that. None for a body that is no action (the
    server answers it at once with a 4xx)."""
    action = body.get("action") if isinstance(body, dict) else None
    kind = action.get("action") if isinstance(action, dict) else None
    if not isinstance(kind, str):
        return None
    timeout = action.get("timeout")
    usable = isinstance(timeout, (int, float)) and not isinstance(timeout, bool) \
        and 0 < timeout <= 86400
    t = timeout if usable else 120
    margin = {"run": 90, "run_ipython": 200}.get(kind, 5)
    if kind.startswith("browse"):
        t, margin = max(t, 30), 30
    return t + margin + 5


def raw_deadline(data: bytes) -> float | None:
    """A mutated raw body that still decodes to an action is due when that action is."""
    try:
        return deadline_of(json.loads(data))
    except (ValueError, RecursionError):
        return None


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.by_status: dict[str, int] = {}
        self.five_xx: list[dict] = []
        self.hangs: list[dict] = []
        self.crashes: list[dict] = []
        self.wedged = 0
        self.client_errors = 0
        self.conn_errors: list[dict] = []
        self.slowest: list[dict] = []  # the 10 slowest answers, with what came before them
        self.rss_tree_peak_kb = 0
        self.server_hwm_kb = 0

    def record(self, kind: str, status: int | None) -> None:
        with self.lock:
            self.sent += 1
            key = f"{kind} {status}"
            self.by_status[key] = self.by_status.get(key, 0) + 1


class Server:
    """One bounded sandboxd; restartable."""

    def __init__(self, binary: str, root: str, plugins: list[str], browser: bool) -> None:
        self.binary, self.root, self.plugins, self.browser = binary, root, plugins, browser
        self.marker = f"campaign-{os.getpid()}-{random.randrange(1 << 30)}"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.restarts = 0

    def start(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        env = dict(os.environ, SESSION_API_KEY=KEY, PYENV_REHASH_TIMEOUT="1",
                   NO_CHANGE_TIMEOUT_SECONDS=str(NO_CHANGE_TIMEOUT), RUST_LOG="error",
                   SANDBOXD_CAMPAIGN=self.marker)
        args = [self.binary, str(self.port), "--working-dir", f"{self.root}/wd",
                "--max-upload-bytes", str(UPLOAD_LIMIT)]
        if self.plugins:
            args += ["--plugins", *self.plugins]
        args.append("--enable-browser" if self.browser else "--no-enable-browser")

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.log = open(f"{self.root}/server-{self.restarts}.log", "wb")
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=limits)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited at start-up: see {self.log.name}")
            try:
                if requests.get(f"{self.base}/alive", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise SystemExit("server did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop(signal.SIGKILL)
        self.restarts += 1
        self.start()

    def tree_pids(self) -> list[int]:
        """The server and every process carrying the marker (its descendants)."""
        out = []
        needle = f"SANDBOXD_CAMPAIGN={self.marker}".encode()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
        return out


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rfind(")") + 2] != "Z"
    except OSError:
        return False


# ---- generators ------------------------------------------------------------------------

class Gen:
    def __init__(self, rng: random.Random, root: str, known: bool) -> None:
        self.r, self.root, self.known = rng, root, known
        self.wd = f"{root}/wd"
        self.bombs = self._bombs()

    def _bombs(self) -> dict[str, bytes]:
        def z(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
            b = io.BytesIO()
            with zipfile.ZipFile(b, "w", method) as f:
                for n, d in entries:
                    f.writestr(n, d)
            return b.getvalue()
        big = b"\0" * (UPLOAD_LIMIT + (16 << 20))
        liar = bytearray(z([("liar.bin", big)]))
        for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            i = liar.find(sig)
            while i >= 0:
                liar[i + off:i + off + 4] = (10).to_bytes(4, "little")
                i = liar.find(sig, i + 1)
        return {
            "ratio": z([("zeros.bin", big)]),
            "liar": bytes(liar),
            "count": z([(f"c/{i % 64}/{i}", b"") for i in range(30000)], zipfile.ZIP_STORED),
        }

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def mutate(self, s: str, n: int | None = None) -> str:
        r = self.r
        for _ in range(n if n is not None else r.randrange(4)):
            op = r.randrange(4)
            i = r.randrange(len(s) + 1)
            if op == 0:
                s = s[:i] + self.pick(MUTATION_ALPHABET) + s[i:]
            elif op == 1 and s:
                s = s[:i] + s[i + 1:]
            elif op == 2:
                s = s[:i] + s[i:i + r.randrange(1, 20)] * r.randrange(2, 5) + s[i:]
            else:
                s = s[:i]
        return s

    def safe_text(self, corpus: list[str]) -> str:
        base = self.pick(corpus)
        if self.r.random() < 0.5:
            return base
        m = self.mutate(base)
        if any(w in m for w in DANGEROUS) or "/" in m.replace(base, "") or "." in m.replace(base, ""):
            return base
        return m

    def path(self, writable: bool) -> str:
        r = self.r
        parts = [self.pick(["a", "b", "sub", "f.txt", "x y", "é", "n" * r.randrange(1, 300),
                            "wd", "dest", "file", ".", "", "\x00", "\n", "*", "-rf"])
                 for _ in range(r.randrange(1, 4))]
        rel = "/".join(parts)
        if r.random() < 0.5:
            rel = "wd/" + rel
        if not writable and r.random() < 0.2:
            return self.pick(["/etc/hostname", "/etc/passwd", "/nonexistent/x", "/proc/self/status",
                              "/proc/self/cmdline", "/", "relative.txt", "", "../../etc/hostname",
                              "/proc/uptime", "~/x"])
        if r.random() < 0.1:
            rel += "/../" + self.pick(["a", "wd", "b/c"])
        p = os.path.normpath(f"{self.root}/{rel}")
        if not p.startswith(self.root + "/") and p != self.root:
            p = f"{self.root}/wd/x"
        if r.random() < 0.2:
            p += "/"
        return p

    def value(self, depth: int = 0):
        r = self.r
        if depth < 3 and r.random() < 0.15:
            return [self.value(depth + 1) for _ in range(r.randrange(3))]
        if r.random() < 0.5:
            return self.pick(JSON_VALUES)
        return self.mutate(self.pick(["a", "12", "view", "/tmp", "oh_aci", "default", "true"]))

    def action(self) -> tuple[dict, float]:
        """An action body and the deadline its answer must meet."""
        r = self.r
        kind = self.pick(["run"] * 8 + ["run_ipython"] * 3 + ["read"] * 3 + ["write"] * 2
                         + ["edit"] * 3 + ["browse", "browse_interactive", "message", "think",
                                           "bogus"])
        latest = r.random() < 0.5
        if kind == "run":
            args = {"command": self.safe_text(COMMANDS), "blocking": r.random() < 0.1,
                    "is_input": latest and r.random() < 0.1}
            if latest and r.random() < 0.05:
                args.update(is_static=True, cwd=self.path(True))
        elif kind == "run_ipython":
            args = {"code": self.safe_text(CELLS), "include_extra": r.random() < 0.8}
        elif kind == "read":
            args = {"path": self.path(False), "start": self.pick([0, 0, 1, -1, 5, 10**12, -10**12]),
                    "end": self.pick([-1, -1, 2, 0, 10**12])}
            if r.random() < 0.3:
                args["impl_source"] = "oh_aci"
                if latest:
                    args["view_range"] = self.pick([[1, 2], [0, -1], [5, 1], [-5, -1], [1]])
                else:
                    args["translated_ipython_code"] = self.mutate(
                        f"print(file_editor(**{{'command': 'view', 'path': {args['path']!r}}}))", 2)
        elif kind == "write":
            args = {"path": self.path(True),
                    "content": self.pick(["x", "", "a\nb\n", "\x00bin", "é" * 1000,
                                          "y" * r.choice([10, 10000, 3 << 20])]),
                    "start": self.pick([0, 1, -1, 3]), "end": self.pick([-1, 0, 2])}
        elif kind == "edit":
            cmd = self.pick(["view", "create", "str_replace", "insert", "undo_edit", "bogus"])
            args = {"path": self.path(cmd != "view"), "command": cmd,
                    "file_text": self.pick([None, "text\n", ""]),
                    "old_str": self.pick([None, "text", "", "a"]),
                    "new_str": self.pick([None, "new", ""]),
                    "insert_line": self.pick([None, 0, 1, "2", -1, "x", 10**9]),
                    "view_range": self.pick([None, [1, 3], [0, 0], [2, -1]])}
        elif kind == "browse":
            args = {"url": self.pick(["about:blank", "data:text/html,<h1>x</h1>",
                                      f"file://{self.wd}/page.html", "http://127.0.0.1:9/",
                                      "page.html", "", "javascript:1", "file:///nonexistent"])}
        elif kind == "browse_interactive":
            text = self.pick(BROWSER_ACTIONS)
            m = self.mutate(text)
            args = {"browser_actions": m if not any(w in m for w in ("goto", "http", ":/")) else text}
        else:
            args = {"content": "x"}
        if latest:
            args["security_risk"] = -1
        # Swap fields for other types.
        for _ in range(r.choice([0, 0, 0, 1, 2])):
            field = self.pick(list(args) + ["thought", "timeout", "hidden"])
            value = self.value()
            if kind in ("write", "edit") and field in ("path", "cwd"):
                continue  # a mutated write path could leave the temp dir
            if kind == "run" and field in ("cwd", "command") and isinstance(value, str):
                continue
            args[field] = value
        timeout = self.pick([None, 5, 10, 30, 1, 0.5, -1, 0, "x", 1e300])
        body = {"action": kind, "args": args}
        if timeout is not None:
            body["timeout"] = timeout
        return {"action": body}, deadline_of({"action": body})

    def raw_body(self) -> bytes:
        r = self.r
        body, _ = self.action()
        data = json.dumps(body).encode()
        op = r.randrange(7)
        if op == 0:
            return data[:r.randrange(len(data))]
        if op == 1:
            b = bytearray(data)
            for _ in range(r.randrange(1, 5)):
                b[r.randrange(len(b))] = r.randrange(256)
            return bytes(b)
        if op == 2:
            n = r.choice([100, 1000, 100000])
            return b'{"action": {"action": "run", "args": {"command": "x", "e": ' + b"[" * n + b"]" * n + b"}}}"
        if op == 3:
            return b"[" * r.choice([10, 129, 100000])
        if op == 4:
            return r.randbytes(r.randrange(1, 200))
        if op == 5:
            return json.dumps(self.pick(JSON_VALUES)).encode()
        return data.replace(b'"', b"'", r.randrange(4))

    def zip_bytes(self) -> bytes:
        r = self.r
        if r.random() < 0.06:
            return self.bombs[self.pick(list(self.bombs))]
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", self.pick([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as f:
            for _ in range(r.randrange(1, 6)):
                name = self.pick(["a.txt", "../x.txt", "/abs.txt", "d/", "d/e.txt", "escape/y",
                                  "l", "..\\w.txt", "a.txt", "é/中.txt", "n" * 300, "x/../../z",
                                  "file/under", ""]) or "empty"
                info = zipfile.ZipInfo(name)
                if r.random() < 0.15:
                    info.external_attr = 0o120777 << 16  # a symlink entry
                    data = self.pick([b"/etc", b"..", b"../..", b"escape"])
                else:
                    data = self.pick([b"", b"data", b"z" * 100000])
                if name.endswith("/"):
                    data = b""
                f.writestr(info, data)
        data = bytearray(b.getvalue())
        if r.random() < 0.2:
            for _ in range(r.randrange(1, 4)):
                data[r.randrange(len(data))] = r.randrange(256)
        return bytes(data)

    def other(self) -> tuple[str, str, dict, float]:
        """A non-action request: (method, path, requests kwargs, deadline)."""
        r = self.r
        k = r.randrange(100)
        if k < 35:
            dest = self.pick([self.path(True), f"{self.wd}/up", f"{self.root}/dest", "relative",
                              "", f"{self.wd}/f.txt", f"{self.root}/{'d' * 300}",
                              f"{self.wd}/a\x00b"])
            zipped = r.random() < 0.5
            name = self.pick(["f.txt", "a.zip", "../x", "", ".", "..", "a/b", "n" * 255,
                              "é.txt", "a\\b", "x.zip", "sp ace.txt"])
            if zipped and not name.endswith(".zip"):
                name += ".zip"
            data = self.zip_bytes() if zipped else self.pick([b"", b"data", r.randbytes(1000)])
            params = {"destination": dest}
            if r.random() < 0.8:
                params["recursive"] = self.pick(["true", "false", "maybe", "1", ""])
            if r.random() < 0.1:
                headers = {"Content-Type": self.pick(["multipart/form-data", "text/plain",
                                                      "multipart/form-data; boundary=zz"])}
                return "POST", "/upload_file", {"params": params, "data": data[:5000],
                                                "headers": headers}, 60
            return "POST", "/upload_file", {"params": params,
                                            "files": {self.pick(["file", "file", "other"]): (name, data)}}, 60
        if k < 55:
            if r.random() < 0.2:  # escapes sent as they are: NUL, invalid UTF-8, bad escapes
                q = self.pick([f"{self.wd}/a%00b", f"{self.wd}/%FF%FE", "%", "%zz",
                               f"{self.wd}&path=/tmp", ""])
                return "GET", f"/download_files?path={q}", {}, 60
            q = self.pick([self.path(False), f"{self.wd}", "relative", "", "/nonexistent",
                           f"{self.wd}/sub", f"{self.root}/dest"])
            return "GET", "/download_files", {"params": {"path": q}}, 60
        if k < 70:
            body = self.pick([{"path": self.mutate("sub")}, {"path": None}, {}, {"path": 3},
                              {"path": "../../.."}, {"path": "\x00"}, [], {"path": "n" * 5000}])
            return "POST", "/list_files", {"json": body}, 20
        if k < 78:
            return "POST", "/update_mcp_server", {"json": self.pick(
                [[], [{"name": "x"}], {}, None, [1, 2], [{"name": ["a"]}]])}, 20
        if k < 84:
            return "POST", "/internal/file_editor", {"json": self.pick(
                [{}, {"command": "view", "path": self.wd}, {"command": "bogus"}, [], None,
                 {"command": "create", "path": f"{self.wd}/ie.txt", "file_text": "x"}])}, 20
        if k < 92:
            return self.pick(["GET", "POST", "PUT", "DELETE"]), self.pick(
                ["/alive", "/server_info", "/vscode/connection_token", "/nope", "/execute_action",
                 "/%00", "/" + "a" * 10000, "/upload_file", "//alive"]), {}, 20
        return "POST", "/execute_action", {"data": self.raw_body(),
                                           "headers": {"Content-Type": "application/json"}}, 20

    def known_defect(self) -> tuple[dict, float]:
        path = self.pick(["/dev/zero", "/dev/urandom", "/proc/self/pagemap", f"{self.wd}/fifo"])
        kind = self.pick(["read", "write", "run"])
        if kind == "run":
            return {"action": {"action": "run", "args": {"command": self.pick(
                ["setsid sleep 1000 &", "pkill -9 -f ipykernel", "echo 'unbalanced"])},
                "timeout": 10}}, 15
        args = {"path": path} if kind == "read" else {"path": path, "content": "x"}
        return {"action": {"action": kind, "args": args, "timeout": 10}}, 15


# ---- the run -------------------------------------------------------------------------

START = time.time()


def send(session: requests.Session, server: Server, stats: Stats, method: str, path: str,
         kwargs: dict, deadline: float, what: str, history: list) -> None:
    headers = dict(kwargs.pop("headers", {}))
    if random.random() < 0.02:
        headers["X-Session-API-Key"] = "wrong"
    else:
        headers["X-Session-API-Key"] = KEY
    entry = {"method": method, "path": path, "what": what,
             "body": repr(kwargs.get("json", kwargs.get("data", kwargs.get("params"))))[:500]}
    history.append(entry)
    del history[:-20]
    entry["at"] = round(time.time() - START, 1)
    restarts = server.restarts
    t0 = time.time()
    try:
        resp = session.request(method, server.base + path, headers=headers, timeout=deadline,
                               **kwargs)
        status = resp.status_code
        entry["status"] = status
        entry["seconds"] = round(time.time() - t0, 3)
        stats.record(what, status)
        with stats.lock:
            if len(stats.slowest) < 10 or entry["seconds"] > stats.slowest[-1]["seconds"]:
                stats.slowest.append({**entry, "before": [dict(h) for h in history[-4:-1]]})
                stats.slowest.sort(key=lambda e: -e["seconds"])
                del stats.slowest[10:]
        if status >= 500:
            with stats.lock:
                stats.five_xx.append({**entry, "answer": resp.text[:500]})
        elif status >= 400:
            with stats.lock:
                stats.client_errors += 1
    except requests.Timeout:
        stats.record(what, "hang")
        with stats.lock:
            stats.hangs.append({**entry, "deadline": deadline,
                                "before": [dict(h) for h in history[-4:-1]]})
        check_wedged(server, stats)
    except requests.ConnectionError as e:
        if server.restarts != restarts:
            # The server was restarted (by the other stream's wedge check) while this was
            # in flight, or this went out on a connection to the server before: not a finding.
            stats.record(what, "cut-by-restart")
            session.close()
        elif server.alive():
            stats.record(what, "conn-error")
            with stats.lock:
                stats.conn_errors.append({**entry, "error": str(e)[:300]})
        else:
            stats.record(what, "crash")
            with stats.lock:
                if not server.alive():
                    stats.crashes.append({"last": list(history), "exit": server.proc.returncode})
                    server.restart()
    except (requests.RequestException, ValueError) as e:
        # The client library refused to send it (an invalid URL or header): not a request.
        stats.record(what, "not-sent")
        entry["error"] = str(e)[:200]


def check_wedged(server: Server, stats: Stats) -> None:
    try:
        r = requests.post(f"{server.base}/execute_action", headers={"X-Session-API-Key": KEY},
                          json={"action": {"action": "run", "args": {"command": "C-c", "is_input": True,
                                "security_risk": -1}, "timeout": 10}}, timeout=20)
        r = requests.post(f"{server.base}/execute_action", headers={"X-Session-API-Key": KEY},
                          json={"action": {"action": "run", "args": {"command": "echo probe"},
                                           "timeout": 10}}, timeout=20)
        if r.ok:
            return
    except requests.RequestException:
        pass
    with stats.lock:
        stats.wedged += 1
        server.restart()


def sampler(server: Server, stats: Stats, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        pids = server.tree_pids()
        total = sum(rss_kb(p) for p in pids)
        with stats.lock:
            stats.rss_tree_peak_kb = max(stats.rss_tree_peak_kb, total)
            if server.alive():
                stats.server_hwm_kb = max(stats.server_hwm_kb, rss_kb(server.proc.pid, "VmHWM"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/sandboxd")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-plugins", action="store_true", help="no IPython kernel")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--known-defects", action="store_true",
                    help="also send issue 9's known triggers (/dev/zero, FIFOs, setsid, pkill)")
    ap.add_argument("--json", help="write the figures and findings here")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
    root = tempfile.mkdtemp(prefix="sandboxd-campaign-")
    os.makedirs(f"{root}/wd")
    os.makedirs(f"{root}/dest")
    with open(f"{root}/wd/page.html", "w") as f:
        f.write("<html><body><button id=b>Click</button><input name=q></body></html>")
    with open(f"{root}/wd/f.txt", "w") as f:
        f.write("text\n" * 10)
    os.symlink("../dest", f"{root}/wd/escape")
    if a.known_defects:
        os.mkfifo(f"{root}/wd/fifo")
    rng = random.Random(a.seed)
    random.seed(a.seed)
    gen = Gen(rng, root, a.known_defects)
    server = Server(os.path.abspath(a.bin), root, [] if a.no_plugins else ["agent_skills", "jupyter"],
                    not a.no_browser)
    server.start()
    stats = Stats()
    stop = threading.Event()
    threading.Thread(target=sampler, args=(server, stats, stop), daemon=True).start()
    # Both streams are generated up front from the seed, so a run is reproducible.
    n_actions = a.requests * 6 // 10
    actions = []
    for _ in range(n_actions):
        if a.known_defects and rng.random() < 0.01:
            actions.append(gen.known_defect())
        elif rng.random() < 0.1:
            raw = gen.raw_body()
            actions.append(({"__raw__": raw}, raw_deadline(raw) or 20))
        else:
            actions.append(gen.action())
    others = [gen.other() for _ in range(a.requests - n_actions)]
    # A raw body from the second stream that decodes to an action waits for the action lock
    # (its deadline counts from holding it, src/actions/mod.rs): behind at most one action
    # of the first stream, which is sequential.
    queue = max((d for _, d in actions), default=0)
    for i, (method, path, kw, deadline) in enumerate(others):
        due = raw_deadline(kw["data"]) if path == "/execute_action" and "data" in kw else None
        if due is not None:
            others[i] = (method, path, kw, due + queue)
    t0 = time.time()

    def run_actions() -> None:
        s, hist = requests.Session(), []
        for i, (body, deadline) in enumerate(actions):
            if "__raw__" in body:
                send(s, server, stats, "POST", "/execute_action",
                     {"data": body["__raw__"], "headers": {"Content-Type": "application/json"}},
                     deadline, "raw", hist)
            else:
                send(s, server, stats, "POST", "/execute_action", {"json": body}, deadline,
                     body["action"].get("action", "?"), hist)
            if i % 1000 == 0:
                print(f"actions {i}/{len(actions)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    def run_others() -> None:
        s, hist = requests.Session(), []
        for method, path, kw, deadline in others:
            send(s, server, stats, method, path, kw, deadline, path.split("?")[0][:30], hist)

    threads = [threading.Thread(target=run_actions), threading.Thread(target=run_others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    # Survivors: SIGTERM the server, wait 5 s, look for anything still carrying the marker.
    with stats.lock:
        if server.alive():
            stats.server_hwm_kb = max(stats.server_hwm_kb, rss_kb(server.proc.pid, "VmHWM"))
    stop.set()
    before = [p for p in server.tree_pids() if p != server.proc.pid]
    server.stop(signal.SIGTERM)
    time.sleep(5)
    survivors = [p for p in server.tree_pids() if not_zombie(p)]
    survivor_cmds = []
    for p in survivors:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                survivor_cmds.append(f"{p}: " + f.read().replace(b"\0", b" ").decode(errors="replace")[:120])
            os.kill(p, signal.SIGKILL)  # ours: it carries this campaign's marker
        except OSError:
            pass
    report = {
        "requests": stats.sent, "seconds": round(elapsed, 1), "5xx": len(stats.five_xx),
        "crashes": len(stats.crashes), "hangs": len(stats.hangs), "wedged": stats.wedged,
        "survivors": len(survivors), "descendants_at_stop": len(before),
        "client_errors_4xx": stats.client_errors, "connection_errors": len(stats.conn_errors),
        "server_rss_peak_mb": round(stats.server_hwm_kb / 1024, 1),
        "tree_rss_peak_mb": round(stats.rss_tree_peak_kb / 1024, 1),
        "restarts": server.restarts, "seed": a.seed, "known_defects": a.known_defects,
    }
    print(json.dumps(report, indent=1))
    findings = {"report": report, "by_status": dict(sorted(stats.by_status.items())),
                "five_xx": stats.five_xx[:50], "hangs": stats.hangs[:50],
                "connection_errors": stats.conn_errors[:50], "slowest": stats.slowest,
                "crashes": stats.crashes[:10], "survivors": survivor_cmds}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(findings, f, indent=1, default=str)
    for kind in ("five_xx", "hangs", "connection_errors"):
        for item in findings[kind][:10]:
            print(kind, json.dumps(item, default=str)[:600], file=sys.stderr)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
