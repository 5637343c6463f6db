#!/usr/bin/env python3
"""IPython lost-output check and start-up times through POST /execute_action (issue 4,
BENCHMARKS.md).

Launches the server with `--plugins agent_skills jupyter`, measures start -> /alive ok and
start -> first cell answered, then runs N cells that each print a unique token and counts
the cells whose content is not exactly their own token; every 500th cell is preceded by a
cell that times out (1 s) while printing, to exercise the interrupt path.
Prints one JSON object.

  ipython_bench.py [N=10000] [path/to/sandboxd (default target/release/sandboxd)]
"""
import json, os, secrets, socket, subprocess, sys, tempfile, time, uuid
import requests

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
bin_ = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'target', 'release', 'sandboxd')
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
ws = tempfile.mkdtemp()
key = secrets.token_hex(8)
env = dict(os.environ, SESSION_API_KEY=key)
t0 = time.monotonic()
p = subprocess.Popen([bin_, str(port), '--working-dir', ws, '--plugins', 'agent_skills', 'jupyter'],
                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
url = f'http://127.0.0.1:{port}'
h = {'X-Session-API-Key': key}
http = requests.Session()
while True:
    try:
        if http.get(url + '/alive', timeout=1).json().get('status') == 'ok':
            break
    except Exception:
        pass
    time.sleep(0.005)
t_alive = time.monotonic() - t0

def cell(code, timeout=120):
    a = {'action': 'run_ipython', 'timeout': timeout, 'args': {'code': code, 'thought': '', 'include_extra': False,
         'confirmation_state': 'confirmed', 'kernel_init_code': ''}}
    r = http.post(url + '/execute_action', json={'action': a}, headers=h, timeout=timeout + 60)
    r.raise_for_status()
    return r.json()

o = cell('print(1)')
t_first = time.monotonic() - t0
assert o['content'] == '1', o
lost = 0; timeouts = 0; bad = []
t1 = time.monotonic()
for i in range(N):
    if i % 500 == 250:
        o = cell(f"import time\nprint('slow{i}', flush=True)\ntime.sleep(5)\nprint('late{i}')", timeout=1)
        timeouts += 1
        if 'Execution timed out' not in o['content']:
            bad.append(('timeout', i, o['content'][:200]))
    tok = f'tok{i}_{uuid.uuid4().hex}'
    o = cell(f"print('{tok}')")
    if o.get('observation') != 'run_ipython' or o['content'] != tok:
        lost += 1
        if len(bad) < 10:
            bad.append((i, o.get('content', '')[:200]))
el = time.monotonic() - t1
p.terminate(); p.wait(30)
print(json.dumps({'cells': N, 'timeout_cells_interleaved': timeouts, 'lost_or_wrong': lost, 'bad_samples': bad,
                  'start_to_alive_s': round(t_alive, 3), 'start_to_first_cell_s': round(t_first, 3),
                  'wall_s': round(el, 1)}))
