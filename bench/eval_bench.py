#!/usr/bin/env python3
"""Evaluation-mode benchmark: the time of one MiniWoB++ episode step (a click plus the
observation), through sandboxd and through BrowserGym alone.

  * sandboxd   -- `browse_interactive` `click("<bid>")` through POST /execute_action of a
                  server started with --browsergym-eval-env (end to end: HTTP, the bridge,
                  env.step, the observation built and shaped for the 0.20 client), N runs;
                  also start -> /alive and start -> the goal (the task loaded)
  * browsergym -- env.step('click("<bid>")') called directly in this Python, no server: with
                  slow_mo 0 (what sandboxd's bridge asks for) and with the task's own slow_mo
                  (what the reference server runs; 100 ms for MiniWoB++, BrowserGym's default
                  1000 ms elsewhere), N runs each. The reference's step costs at least that,
                  plus its own per-step work (DOM to text, two PNG encodings, its pipe polled
                  every 10 ms).

The click toggles a checkbox of click-checkboxes, so the episode never ends. Run with the
venv's Python (it needs browsergym-miniwob, miniwob and playwright):

  .venv/bin/python bench/eval_bench.py --server-cmd 'target/release/sandboxd {port} --working-dir {workdir}' [-n 30]

Prints a table on stderr and JSON on stdout.
"""

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

TASK = "browsergym/miniwob.click-checkboxes"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkbox_bid(axtree):
    for node in axtree["nodes"]:
        if node.get("role", {}).get("value") == "checkbox" and node.get("browsergym_id"):
            return node["browsergym_id"]
    raise SystemExit("no checkbox on the page")


def bench_server(cmd, n):
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="eval-bench-")
    argv = shlex.split(cmd.format(port=port, workdir=workdir))
    argv += ["--browsergym-eval-env", TASK, "--browsergym-python", sys.executable]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    try:
        while True:
            try:
                if http.get(f"{base}/alive", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise SystemExit("the server exited")
            time.sleep(0.01)
        alive = time.perf_counter() - t0

        def step(actions):
            r = http.post(
                f"{base}/execute_action",
                json={"action": {"action": "browse_interactive", "args": {"browser_actions": actions}}},
                timeout=120,
            )
            r.raise_for_status()
            return r.json()

        step("GET_EVAL_GOAL")
        ready = time.perf_counter() - t0
        bid = checkbox_bid(step("noop(0)")["extras"]["axtree_object"])
        times = []
        for _ in range(n):
            t = time.perf_counter()
            obs = step(f'click("{bid}")')
            times.append(time.perf_counter() - t)
            assert not obs["extras"]["error"], obs["extras"]["last_browser_action_error"]
        return {"alive_s": alive, "goal_s": ready, "step_s": times}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_browsergym(n, slow_mo, chromium):
    import browsergym.core
    import browsergym.miniwob  # noqa: F401
    import gymnasium as gym
    import miniwob
    import playwright.sync_api

    html = os.path.join(os.path.dirname(miniwob.__file__), "html", "miniwob")
    os.environ.setdefault("MINIWOB_URL", "file://" + html + "/")
    if browsergym.core._PLAYWRIGHT is None:
        pw = playwright.sync_api.sync_playwright().start()
        browsergym.core._set_global_playwright(pw)
        launch = pw.chromium.launch
        pw.chromium.launch = lambda **kw: launch(executable_path=chromium, **kw)
    kwargs = {"tags_to_mark": "all"}
    if slow_mo is not None:
        kwargs["slow_mo"] = slow_mo
    env = gym.make(TASK, **kwargs)
    obs, _ = env.reset()
    bid = checkbox_bid(obs["axtree_object"])
    times = []
    for _ in range(n):
        t = time.perf_counter()
        obs, *_ = env.step(f'click("{bid}")')
        times.append(time.perf_counter() - t)
        assert not obs["last_action_error"], obs["last_action_error"]
    env.close()
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server-cmd", required=True)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    out = {"server": bench_server(args.server_cmd, args.n)}
    out["browsergym_slow_mo_0"] = bench_browsergym(args.n, 0, args.chromium)
    out["browsergym_task_slow_mo"] = bench_browsergym(args.n, None, args.chromium)
    out["browsergym_slow_mo_1000"] = bench_browsergym(max(5, args.n // 3), 1000, args.chromium)
    rows = [
        ("sandboxd eval mode, click + observation (HTTP)", out["server"]["step_s"]),
        ("BrowserGym env.step alone, slow_mo 0", out["browsergym_slow_mo_0"]),
        ("BrowserGym env.step alone, task's slow_mo (100 ms)", out["browsergym_task_slow_mo"]),
        ("BrowserGym env.step alone, slow_mo 1000 ms", out["browsergym_slow_mo_1000"]),
    ]
    print(f"start -> /alive {out['server']['alive_s']:.3f} s, start -> goal {out['server']['goal_s']:.3f} s", file=sys.stderr)
    for name, xs in rows:
        print(f"{name}: p50 {statistics.median(xs):.3f} s, p90 {pct(xs, 90):.3f} s (n={len(xs)})", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
