"""Container start -> /alive (and -> first IPython cell) for the runtime image.

    python3 bench/container_start.py [--driver overlay|vfs] [-n 7] [--image localhost/sandboxd:slim]

Starts the image as OpenHands' DockerRuntime does (podman run -d --init, entrypoint [],
working dir /openhands/code/, host network, the exact server command with
--plugins agent_skills jupyter), polls GET /alive every 10 ms, runs one IPython cell, stops
the container. Uses the podman store of scripts/image-test (build the image there first).
Run as root.
"""

import argparse
import shlex
import socket
import statistics
import subprocess
import tempfile
import time

import requests

SERVER = ['/openhands/micromamba/bin/micromamba', 'run', '-n', 'openhands', 'poetry', 'run',
          'python', '-u', '-m', 'openhands.runtime.action_execution_server']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--driver', default='overlay')
    ap.add_argument('--image', default='localhost/sandboxd:slim')
    ap.add_argument('-n', type=int, default=7)
    a = ap.parse_args()
    podman = shlex.split(
        f'podman --root /var/lib/containers/sandboxd-image-test/{a.driver} '
        f'--runroot /run/containers/sandboxd-image-test/{a.driver} --storage-driver {a.driver} '
        '--runtime runc --cgroup-manager cgroupfs --events-backend file')
    alive, cell = [], []
    for _ in range(a.n):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        wd = tempfile.mkdtemp(prefix='sandboxd-bench-')
        name = f'sandboxd-bench-{port}'
        t0 = time.monotonic()
        subprocess.run(podman + [
            'run', '-d', '--rm', '--init', '--name', name, '--entrypoint', '[]',
            '-w', '/openhands/code/', '--network', 'host',
            '--ulimit', 'nofile=8192:8192', '--ulimit', 'nproc=8192:8192',
            '-v', f'{wd}:{wd}', a.image, *SERVER, str(port), '--working-dir', wd,
            '--plugins', 'agent_skills', 'jupyter', '--username', 'openhands',
            '--user-id', '1000'], check=True, capture_output=True)
        try:
            while True:
                try:
                    if requests.get(f'http://127.0.0.1:{port}/alive', timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() - t0 > 120:
                    raise SystemExit('no /alive within 120 s')
                time.sleep(0.01)
            alive.append(time.monotonic() - t0)
            requests.post(f'http://127.0.0.1:{port}/execute_action', timeout=60, json={
                'action': {'action': 'run_ipython', 'args': {'code': 'print(1)'}}})
            cell.append(time.monotonic() - t0)
        finally:
            subprocess.run(podman + ['stop', '-t', '10', name], capture_output=True)
            subprocess.run(['rm', '-rf', wd], check=False)
    print(f'{a.driver}: start -> /alive median {statistics.median(alive):.2f} s '
          f'(min {min(alive):.2f}, max {max(alive):.2f}); '
          f'-> first cell median {statistics.median(cell):.2f} s, n={a.n}')


if __name__ == '__main__':
    main()
