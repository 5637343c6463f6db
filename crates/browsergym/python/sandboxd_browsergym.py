"""sandboxd's BrowserGym bridge: runs one BrowserGym evaluation environment for the server.

Started by sandboxd (crates/browsergym) as `python sandboxd_browsergym.py '<config json>'`.
The server talks to it over stdin/stdout in frames: an 8-byte header (JSON length, binary
length, both u32 big-endian), the JSON, then the binary part (a step's screenshot as raw RGB).
Reads block (no polling); anything a library prints goes to stderr, never into the frames.

Messages out, in order: {"kind": "imported"} once BrowserGym and the benchmark are imported
and the id is registered (or {"kind": "fatal", ...} and exit 1), then {"kind": "ready",
"goal": ..., "goal_image_urls": [...]} once env.reset() is done (or "fatal"), then one
{"kind": "step", "id": n, ...} per {"kind": "step", "id": n, "action": ...} received.
End of input: env.close() and exit.
"""

import json
import math
import os
import struct
import sys
import traceback

HEADER = struct.Struct(">II")

# The protocol's own copies of stdin/stdout; fds 0 and 1 then point elsewhere so that a
# print() anywhere (a task, nltk, playwright) cannot corrupt a frame or steal input.
_IN = os.dup(0)
_OUT = os.dup(1)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
os.dup2(2, 1)
sys.stdout = sys.stderr


def send(msg, binary=b""):
    try:
        data = json.dumps(msg, ensure_ascii=False, allow_nan=False).encode()
    except ValueError:  # NaN or infinity somewhere in the page's numbers
        data = json.dumps(_finite(msg), ensure_ascii=False).encode()
    frame = HEADER.pack(len(data), len(binary)) + data + binary
    view = memoryview(frame)
    while view:
        n = os.write(_OUT, view)
        view = view[n:]


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def read_exact(n):
    chunks = []
    while n:
        chunk = os.read(_IN, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive():
    """The next message, or None at end of input (the server closed the pipe or exited)."""
    head = read_exact(HEADER.size)
    if head is None:
        return None
    json_len, bin_len = HEADER.unpack(head)
    data = read_exact(json_len)
    if data is None or (bin_len and read_exact(bin_len) is None):
        return None
    return json.loads(data)


def fatal(stage, error, install=None):
    send({"kind": "fatal", "stage": stage, "error": error, "install": install})
    sys.exit(1)


def last_line(exc):
    return f"{type(exc).__name__}: {exc}"


# Which package registers which ids (OpenHands' rule: visualwebarena before webarena).
BENCHMARKS = [
    ("visualwebarena", "browsergym.visualwebarena", "browsergym-visualwebarena"),
    ("webarena", "browsergym.webarena", "browsergym-webarena"),
    ("miniwob", "browsergym.miniwob", "browsergym-miniwob"),
]


def import_benchmark(env_id):
    for word, module, package in BENCHMARKS:
        if word in env_id:
            break
    else:
        fatal(
            "import",
            f"unsupported BrowserGym evaluation environment {env_id!r}: the id must name "
            "miniwob, webarena or visualwebarena",
        )
    try:
        import gymnasium  # noqa: F401
        import browsergym.core  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        fatal("import", f"cannot import BrowserGym ({last_line(e)})", "browsergym-core")
    try:
        __import__(module)
    except ImportError as e:
        fatal("import", f"cannot import {module} ({last_line(e)})", package)
    if word == "miniwob" and "MINIWOB_URL" not in os.environ:
        # The `miniwob` package ships the task pages; use them when no URL is configured.
        try:
            import miniwob
        except ImportError:
            fatal(
                "import",
                "MiniWoB++ needs its task pages: set MINIWOB_URL to their file:// or http:// "
                "URL (ending in /miniwob/), or install the package that ships them",
                "miniwob",
            )
        html = os.path.join(os.path.dirname(os.path.abspath(miniwob.__file__)), "html", "miniwob")
        os.environ["MINIWOB_URL"] = "file://" + html + "/"
    if word == "visualwebarena":
        try:  # as OpenHands does; offline, an already installed tokenizer is used
            import nltk

            try:
                nltk.data.find("tokenizers/punkt_tab")
            except LookupError:
                nltk.download("punkt_tab", quiet=True)
        except Exception as e:  # noqa: BLE001
            print(f"nltk punkt_tab not available: {last_line(e)}", file=sys.stderr)


def use_chromium(executable, args):
    """Points BrowserGym's Playwright at the system's Chromium (no downloaded browser)."""
    import browsergym.core
    import playwright.sync_api

    pw = playwright.sync_api.sync_playwright().start()
    browsergym.core._set_global_playwright(pw)
    launch = pw.chromium.launch

    def launch_system_chromium(**kwargs):
        kwargs["executable_path"] = executable
        kwargs["args"] = list(kwargs.get("args") or []) + list(args)
        return launch(**kwargs)

    pw.chromium.launch = launch_system_chromium


def goal_of(obs):
    """OpenHands' goal: the first text of goal_object, else the legacy goal string."""
    goal = obs.get("goal")
    images = []
    objects = list(obs.get("goal_object") or [])
    if objects:
        goal = objects[0].get("text", goal)
        for message in objects:
            if message.get("type") == "image_url":
                src = message["image_url"]
                images.append(src["url"] if isinstance(src, dict) else src)
    return goal, images


def step_reply(req_id, obs, reward, terminated, truncated):
    shot = obs["screenshot"]
    import numpy as np

    shot = np.ascontiguousarray(shot, dtype=np.uint8)
    if shot.ndim != 3 or shot.shape[2] != 3:
        shot = np.zeros((0, 0, 3), dtype=np.uint8)
    if not isinstance(reward, (int, float)) or isinstance(reward, bool):
        reward = float(reward)
    msg = {
        "kind": "step",
        "id": req_id,
        # As OpenHands' json.dumps(rewards) writes it (0 and 0.0 differ).
        "reward": json.dumps(reward),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "url": obs["url"],
        "open_pages_urls": list(obs["open_pages_urls"]),
        "active_page_index": int(np.asarray(obs["active_page_index"]).reshape(-1)[0]),
        "dom_object": obs["dom_object"],
        "axtree_object": obs["axtree_object"],
        "extra_element_properties": obs["extra_element_properties"],
        "focused_element_bid": obs["focused_element_bid"] or "",
        "last_action": obs["last_action"],
        "last_action_error": obs["last_action_error"],
        "screenshot_size": [int(shot.shape[1]), int(shot.shape[0])],
    }
    send(msg, shot.tobytes())


def browser_connected(env):
    try:
        return bool(env.unwrapped.browser and env.unwrapped.browser.is_connected())
    except Exception:  # noqa: BLE001
        return False


def main():
    config = json.loads(sys.argv[1])
    env_id = config["env_id"]
    if not env_id.startswith("browsergym/"):
        env_id = "browsergym/" + env_id
    import_benchmark(env_id)
    import gymnasium as gym

    try:
        gym.spec(env_id)
    except Exception as e:  # noqa: BLE001
        fatal("import", f"unknown BrowserGym environment {env_id!r} ({last_line(e)})")
    send({"kind": "imported"})

    try:
        use_chromium(config["executable"], config["chromium_args"])
        kwargs = {"tags_to_mark": "all"}
        if config.get("slow_mo") is not None:
            kwargs["slow_mo"] = config["slow_mo"]
        env = gym.make(env_id, **kwargs)
        obs, _info = env.reset()
        goal, images = goal_of(obs)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        fatal("reset", last_line(e))
    send({"kind": "ready", "goal": goal, "goal_image_urls": images})

    while True:
        msg = receive()
        if msg is None:
            break
        if msg.get("kind") != "step":
            continue
        req_id = msg["id"]
        try:
            obs, reward, terminated, truncated, _info = env.step(msg["action"])
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            send(
                {
                    "kind": "step",
                    "id": req_id,
                    "exception": last_line(e),
                    "browser_connected": browser_connected(env),
                }
            )
            continue
        step_reply(req_id, obs, reward, terminated, truncated)
    try:
        env.close()
    except Exception:  # noqa: BLE001
        pass


if __name__ == "__main__":
    main()
