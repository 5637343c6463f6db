"""sandboxd's kernel-side helpers, installed by the bootstrap cell.

Owns the per-cell output bound inside the kernel: a cell that prints 100 MB sends only the
head and the tail of it over ZeroMQ, so neither the kernel's buffers nor the server's
memory grow with what a cell prints. Must never change what a cell under the bound prints.
"""

import collections
import functools
import os
import sys
import threading


def _parent_id(stream):
    # ipykernel stores the parent's *header* here (extract_header).
    try:
        ph = stream.parent_header or {}
        return ph.get("msg_id") or (ph.get("header") or {}).get("msg_id")
    except Exception:
        return None


def limit_output(head, tail):
    """Keep the first `head` and the last `tail` characters a cell writes to stdout/stderr."""
    try:
        from ipykernel.iostream import OutStream
    except Exception:
        return
    if getattr(OutStream, "_sandboxd_limited", False):
        return
    original = OutStream.write
    lock = threading.Lock()
    # Tail: chunks whose total length is at least `tail` once anything was cut; trimmed by
    # whole chunks so each write costs O(its own length).
    st = {"id": None, "n": 0, "tail": collections.deque(), "tail_len": 0, "omitted": 0}

    def reset(pid):
        st.update(id=pid, n=0, tail=collections.deque(), tail_len=0, omitted=0)

    def write(self, string):
        if not isinstance(string, str):
            return original(self, string)
        pid = _parent_id(self)
        with lock:
            if pid != st["id"]:
                reset(pid)
            room = head - st["n"]
            if room >= len(string):
                st["n"] += len(string)
                send = string
            else:
                room = max(room, 0)
                send = string[:room]
                st["n"] = head
                rest = string[room:]
                chunks = st["tail"]
                if len(rest) >= tail:
                    st["omitted"] += st["tail_len"] + len(rest) - tail
                    chunks.clear()
                    if tail:
                        chunks.append(rest[-tail:])
                    st["tail_len"] = tail
                else:
                    chunks.append(rest)
                    st["tail_len"] += len(rest)
                    while chunks and st["tail_len"] - len(chunks[0]) >= tail:
                        dropped = chunks.popleft()
                        st["tail_len"] -= len(dropped)
                        st["omitted"] += len(dropped)
        if send:
            original(self, send)
        return len(string)

    def flush_tail(*_args):
        with lock:
            rest = "".join(st["tail"])
            omitted = st["omitted"]
            st["tail"], st["tail_len"], st["omitted"] = collections.deque(), 0, 0
        if len(rest) > tail:
            omitted += len(rest) - tail
            rest = rest[len(rest) - tail:]
        if not (rest or omitted):
            return
        note = (
            "\n[... Output truncated: %d characters omitted from the middle of this "
            "cell's output ...]\n" % omitted
        )
        try:
            original(sys.stdout, note + rest)
        except Exception:
            pass

    OutStream.write = write
    OutStream._sandboxd_limited = True
    try:
        get_ipython().events.register("post_run_cell", flush_tail)  # noqa: F821
    except Exception:
        pass


def _unshadow_writes():
    """Drop per-instance `write` attributes that hide the class's (limited) one.

    IPython 9 tees cell output into its history by setting `stream.write` on the instance for
    the duration of a cell and then restoring the bound method it found; restored after the
    cell that installed the limiter, that is the *unlimited* original, shadowing the class
    attribute from then on.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            w = vars(stream).get("write")
        except TypeError:
            continue
        if w is not None and getattr(w, "__self__", None) is stream:
            del vars(stream)["write"]


def _forget_tee_history(ip):
    """IPython 9 also keeps every write of a cell in `history_manager.outputs`, keyed by an
    execution count that never advances here (store_history=False): without this the kernel
    would hold all output of the session."""
    outputs = getattr(getattr(ip, "history_manager", None), "outputs", None)
    if outputs is not None:
        try:
            outputs.clear()
        except Exception:
            pass


def _mark_started(ip):
    # The server's sign that this request's cell began, written before it runs: a cell that
    # ends its kernel at once (os._exit) can take its `busy`/`execute_input` with it, since
    # iopub is sent by a thread; a write(2) to a file is done when it returns.
    path = getattr(ip, "_sandboxd_started_path", None)
    if not path:
        return
    try:
        ph = getattr(ip, "parent_header", None) or {}
        mid = ph.get("msg_id") or (ph.get("header") or {}).get("msg_id")
        if not mid:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, str(mid).encode())
        finally:
            os.close(fd)
    except Exception:
        pass


def _guard_run_cell(ip):
    if getattr(ip, "_sandboxd_guarded", False):
        return
    original = ip.run_cell

    @functools.wraps(original)
    def run_cell(*args, **kwargs):
        _mark_started(ip)
        _unshadow_writes()
        _forget_tee_history(ip)
        return original(*args, **kwargs)

    ip.run_cell = run_cell
    ip._sandboxd_guarded = True


def setup(head, tail, started_path=None):
    """Everything the bootstrap cell needs that must not touch the user's namespace."""
    ip = get_ipython()  # noqa: F821
    ip._sandboxd_started_path = started_path
    _guard_run_cell(ip)
    try:
        # Tracebacks without colour codes, as the reference's kernel init does.
        ip.run_line_magic("colors", "nocolor")
    except Exception:
        pass
    limit_output(head, tail)
