#!/usr/bin/env python3
"""Editor latency through POST /execute_action (issue 5, BENCHMARKS.md).

Launches the server (or targets a running one that shares this machine's file system),
creates the test files directly on disk, then times, per request, the HTTP round trip on a
keep-alive connection until the whole response body has arrived (JSON decoding on the
client is excluded):

  * str_replace on a 5000-line file         (0.20 form: run_ipython print(file_editor(...)))
  * str_replace on a 5 MB file              (same form)
  * view of a 5000-line file                (0.20 form: read + translated_ipython_code)
  * the same three in the latest client's form (edit action / read with view_range)

Each str_replace alternates between two replacement strings so every request edits.
Prints a table on stderr and a JSON object on stdout.

  editor_bench.py --bin target/release/sandboxd [--runs 50]
  editor_bench.py --url http://127.0.0.1:8000 --api-key KEY --workdir /workspace
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.parse

import urllib.request

MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def pct(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(samples):
    ms = [x * 1000 for x in samples]
    return {'n': len(ms), 'p50_ms': round(pct(ms, 50), 2), 'p90_ms': round(pct(ms, 90), 2),
            'min_ms': round(min(ms), 2), 'mean_ms': round(statistics.fmean(ms), 2)}


class Client:
    """Keep-alive HTTP/1.1 client reading each body in one call (http.client), so the
    figures are the server's latency plus transfer, not a Python client's chunked reads."""

    def __init__(self, url, api_key):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
        self.headers = {'Content-Type': 'application/json'}
        if api_key:
            self.headers['X-Session-API-Key'] = api_key

    def timed(self, action):
        body = json.dumps({'action': action}).encode()
        t0 = time.perf_counter()
        self.conn.request('POST', '/execute_action', body=body, headers=self.headers)
        r = self.conn.getresponse()
        raw = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f'HTTP {r.status}: {raw[:300]!r}')
        return dt, json.loads(raw)


def editor_code(args):
    return f'print(file_editor(**{args!r}))'


def legacy_replace(path, old, new):
    return {'action': 'run_ipython', 'timeout': 120,
            'args': {'code': editor_code({'command': 'str_replace', 'path': path,
                                          'old_str': old, 'new_str': new}),
                     'thought': '', 'include_extra': False,
                     'confirmation_state': 'confirmed', 'kernel_init_code': ''}}


def legacy_view(path):
    return {'action': 'read', 'timeout': 120,
            'args': {'path': path, 'start': 0, 'end': -1, 'thought': '',
                     'impl_source': 'oh_aci',
                     'translated_ipython_code': editor_code({'command': 'view', 'path': path})}}


def latest_replace(path, old, new):
    return {'action': 'edit', 'timeout': 120.0,
            'args': {'path': path, 'command': 'str_replace', 'file_text': None,
                     'old_str': old, 'new_str': new, 'insert_line': None, 'content': '',
                     'start': 1, 'end': -1, 'thought': '', 'security_risk': -1,
                     'impl_source': 'oh_aci'}}


def latest_view(path):
    return {'action': 'read', 'timeout': 120.0,
            'args': {'path': path, 'start': 0, 'end': -1, 'thought': '', 'security_risk': -1,
                     'impl_source': 'oh_aci', 'view_range': None}}


def measure_replace(client, make, path, marker, runs, warmup=3):
    samples = []
    a, b = marker, marker + ' edited'
    for i in range(runs + warmup):
        old, new = (a, b) if i % 2 == 0 else (b, a)
        dt, obs = client.timed(make(path, old, new))
        if obs['observation'] != 'edit':
            raise RuntimeError(f'unexpected observation: {str(obs)[:500]}')
        if i >= warmup:
            samples.append(dt)
    return summary(samples)


def measure_view(client, make, path, runs, warmup=3):
    samples = []
    for i in range(runs + warmup):
        dt, obs = client.timed(make(path))
        if obs['observation'] != 'read' or 'cat -n' not in obs['content']:
            raise RuntimeError(f'unexpected observation: {str(obs)[:500]}')
        if i >= warmup:
            samples.append(dt)
    return summary(samples)


def make_files(workdir):
    lines5000 = os.path.join(workdir, 'bench_5000_lines.py')
    with open(lines5000, 'w') as f:
        for i in range(5000):
            f.write(f'    value_{i} = compute(value_{i - 1}, {i})  # line {i}\n')
    big = os.path.join(workdir, 'bench_5mb.txt')
    with open(big, 'w') as f:
        i = 0
        while f.tell() < 5 * MB:
            f.write(f'row {i:07d}: the quick brown fox jumps over the lazy dog\n')
            i += 1
    return lines5000, big


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bin', help='sandboxd binary to launch')
    ap.add_argument('--url')
    ap.add_argument('--api-key')
    ap.add_argument('--workdir', help='server working dir (with --url; must be local)')
    ap.add_argument('--runs', type=int, default=50)
    args = ap.parse_args()

    proc = None
    tmp = None
    if args.bin:
        port = free_port()
        tmp = tempfile.mkdtemp(prefix='editor-bench-')
        workdir = tmp
        api_key = 'bench-key'
        env = dict(os.environ, SESSION_API_KEY=api_key)
        proc = subprocess.Popen(
            [args.bin, str(port), '--working-dir', workdir, '--plugins', 'agent_skills',
             '--username', os.environ.get('USER', 'root'), '--user-id', str(os.getuid())],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        url = f'http://127.0.0.1:{port}'
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + '/alive', timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                sys.exit('server did not start')
            time.sleep(0.1)
    else:
        if not (args.url and args.workdir):
            sys.exit('give --bin, or --url and --workdir')
        url, api_key, workdir = args.url, args.api_key, args.workdir

    try:
        client = Client(url, api_key)
        lines5000, big = make_files(workdir)
        results = {
            'str_replace_5000_lines_0.20': measure_replace(
                client, legacy_replace, lines5000, 'value_2500 = compute(value_2499, 2500)',
                args.runs),
            'str_replace_5mb_0.20': measure_replace(
                client, legacy_replace, big, 'row 0040000: the quick brown fox', args.runs),
            'view_5000_lines_0.20': measure_view(client, legacy_view, lines5000, args.runs),
            'str_replace_5000_lines_latest': measure_replace(
                client, latest_replace, lines5000, 'value_2500 = compute(value_2499, 2500)',
                args.runs),
            'str_replace_5mb_latest': measure_replace(
                client, latest_replace, big, 'row 0040000: the quick brown fox', args.runs),
            'view_5000_lines_latest': measure_view(client, latest_view, lines5000, args.runs),
        }
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    for name, r in results.items():
        print(f'{name:34} p50 {r["p50_ms"]:8.2f} ms  p90 {r["p90_ms"]:8.2f} ms  '
              f'min {r["min_ms"]:8.2f} ms  (n={r["n"]})', file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
