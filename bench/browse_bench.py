#!/usr/bin/env python3
"""Browsing benchmark for sandboxd (or any server speaking the action-execution protocol).

End to end through POST /execute_action, against a static page served on 127.0.0.1:
  * browse      -- `browse` of the page (goto + full observation), N runs
  * click-nav   -- `browse_interactive` click on a link that navigates to a second page,
                   N runs (each preceded by an unmeasured goto back to the first page)
  * cold        -- the first browse (includes the lazy browser start)
Memory: PSS of the browser's process tree (descendants of the server whose name starts with
"chrom") while idle after browsing, plus the whole server tree; and whether any browser
process existed before the first browse.

Usage: browse_bench.py --server-cmd '/path/sandboxd {port} --working-dir {workdir}' [-n 30]
Prints a table on stderr and JSON on stdout. Needs `requests`.
"""

import argparse
import http.server
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

PAGE = b"""<!DOCTYPE html><html><head><title>Bench</title></head><body>
<h1>Benchmark page</h1><p>Some text to render.</p>
<ul>""" + b"".join(b"<li>item %d</li>" % i for i in range(50)) + b"""</ul>
<a href="/second.html">Go to second page</a>
</body></html>"""
SECOND = b"<!DOCTYPE html><html><body><p>This is the second page.</p></body></html>"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/": PAGE, "/second.html": SECOND}.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_table():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            pss = None
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1])
            out[int(pid)] = (ppid, comm, pss or 0)
        except (OSError, ValueError):
            pass
    return out


def tree(root):
    table = proc_table()
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    seen, stack = [], [root]
    while stack:
        p = stack.pop()
        if p in table:
            seen.append(p)
            stack.extend(kids.get(p, []))
    return table, seen


def browser_pss_mb(root):
    table, pids = tree(root)
    browser = [p for p in pids if table[p][1].startswith("chrom")]
    return (
        round(sum(table[p][2] for p in browser) / 1024, 1),
        len(browser),
        round(sum(table[p][2] for p in pids) / 1024, 1),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server-cmd", required=True)
    ap.add_argument("-n", type=int, default=30)
    args = ap.parse_args()

    site_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=site_srv.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{site_srv.server_address[1]}"

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="browse-bench-")
    cmd = args.server_cmd.format(port=port, workdir=workdir)
    env = dict(os.environ)
    env.pop("SESSION_API_KEY", None)
    server = subprocess.Popen(shlex.split(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    sess = requests.Session()
    try:
        for _ in range(600):
            try:
                if sess.get(f"{base}/alive", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("server did not come up")

        _, pre_count, _ = browser_pss_mb(server.pid)

        def act(action, args_):
            body = {"action": {"action": action, "args": args_, "timeout": 60}}
            t = time.perf_counter()
            r = sess.post(f"{base}/execute_action", json=body, timeout=65)
            dt = time.perf_counter() - t
            r.raise_for_status()
            obs = r.json()
            if obs.get("extras", {}).get("error"):
                raise SystemExit(f"{action} failed: {obs['extras'].get('last_browser_action_error')}")
            return dt, obs

        cold, _ = act("browse", {"url": f"{site}/", "thought": ""})
        browse = [act("browse", {"url": f"{site}/", "thought": ""})[0] for _ in range(args.n)]

        click = []
        for _ in range(args.n):
            _, obs = act("browse_interactive", {"browser_actions": f'goto("{site}/")', "thought": ""})
            link = next(n["browsergym_id"] for n in obs["extras"]["axtree_object"]["nodes"]
                        if n.get("role", {}).get("value") == "link"
                        and n.get("name", {}).get("value") == "Go to second page")
            dt, obs = act("browse_interactive", {"browser_actions": f'click("{link}")', "thought": ""})
            assert "This is the second page." in obs["content"], obs["content"][:500]
            click.append(dt)

        time.sleep(3)  # idle
        pss, count, tree_pss = browser_pss_mb(server.pid)
        res = {
            "browser_processes_before_first_browse": pre_count,
            "cold_first_browse_s": round(cold, 3),
            "browse_p50_s": round(statistics.median(browse), 4),
            "browse_p90_s": round(sorted(browse)[int(0.9 * (len(browse) - 1))], 4),
            "click_nav_p50_s": round(statistics.median(click), 4),
            "click_nav_p90_s": round(sorted(click)[int(0.9 * (len(click) - 1))], 4),
            "runs": args.n,
            "browser_idle_pss_mb": pss,
            "browser_processes": count,
            "server_tree_idle_pss_mb": tree_pss,
        }
        for k, v in res.items():
            print(f"{k:40s} {v}", file=sys.stderr)
        print(json.dumps(res))
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        site_srv.shutdown()


if __name__ == "__main__":
    main()
