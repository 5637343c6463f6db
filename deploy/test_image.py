"""Checks of the built runtime image beyond the conformance suite (run by scripts/image-test).

Environment: IMAGE (the image), PODMAN (the podman command with its global flags), ULIMITS
(the --ulimit flags), LABEL (a label put on every container, for clean-up).
"""

import os
import secrets
import shlex
import socket
import subprocess
import tempfile
import time

import pytest
import requests

IMAGE = os.environ.get('IMAGE', 'localhost/sandboxd:slim')
PODMAN = shlex.split(os.environ.get('PODMAN', 'podman'))
ULIMITS = shlex.split(os.environ.get('ULIMITS', ''))
LABEL = os.environ.get('LABEL', 'sandboxd-image-test=manual')
SERVER = ['/openhands/micromamba/bin/micromamba', 'run', '-n', 'openhands', 'poetry', 'run',
          'python', '-u', '-m', 'openhands.runtime.action_execution_server']


def podman(*args, **kw):
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=300, **kw)


def run_in_image(*cmd, entrypoint=None):
    extra = [] if entrypoint is None else ['--entrypoint', entrypoint]
    return podman('run', '--rm', '--label', LABEL, *ULIMITS, '--network', 'none', *extra,
                  IMAGE, *cmd)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_the_shim_refuses_any_other_command_with_exit_2():
    # As the container's command (what OpenHands starts)...
    r = run_in_image(SERVER[0], '--version')
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert 'the only command accepted is:' in r.stderr, r.stderr
    # ...and a few more forms in one container (each container costs a copy of the image).
    bad = [['run', '-n', 'base', 'python'],
           [*SERVER[1:], '8000', '--working-dir', '/workspace', '--username', 'u'],
           [*SERVER[1:], '8000', '--working-dir', '/workspace', '--username', 'u',
            '--user-id', '1', '--enable-browser']]
    script = '\n'.join(
        f'{shlex.join([SERVER[0], *args])} 2>&1; echo "rc=$?"' for args in bad)
    r = run_in_image('sh', '-c', script)
    assert r.stdout.count('rc=2') == len(bad), r.stdout
    assert r.stdout.count('the only command accepted is:') == len(bad), r.stdout
    assert 'sandboxd ready' not in r.stdout


def test_the_image_has_what_the_agent_expects_and_no_python_server():
    script = r'''set -e
absent() { if "$@" >/dev/null 2>&1; then echo "should be absent: $*"; exit 1; fi; }
test "$(id -u openhands)" = 1000
test "$(id -gn openhands)" = root
su openhands -c 'sudo -n true'
git --version
python3 -m pip --version
python3 -c 'import ipykernel, IPython; assert IPython.version_info[0] == 8'
test -d /workspace && test -d /openhands/code
test "$(stat -c %U /workspace)" = openhands
test -x /usr/local/bin/sandboxd
absent command -v chromium
absent command -v poetry
absent command -v micromamba
absent test -e /openhands/micromamba/envs
absent python3 -c 'import openhands'
echo image-ok
'''
    r = run_in_image('bash', '-c', script)
    assert r.returncode == 0 and 'image-ok' in r.stdout, r.stdout + r.stderr


@pytest.fixture
def container():
    """Starts containers with OpenHands' DockerRuntime command; removes them after."""
    names = []
    dirs = []

    def start(env=(), plugins=('agent_skills', 'jupyter')):
        port = free_port()
        name = f'sandboxd-it-{port}'
        key = secrets.token_hex(16)
        wd = tempfile.mkdtemp(prefix='sandboxd-it-')
        dirs.append(wd)
        envs = [a for k, v in env for a in ('-e', f'{k}={v}')]
        cmd = [*SERVER, str(port), '--working-dir', wd]
        if plugins:
            cmd += ['--plugins', *plugins]
        cmd += ['--username', 'openhands', '--user-id', '1000']
        t0 = time.monotonic()
        r = podman('run', '-d', '--label', LABEL, '--name', name, *ULIMITS, '--init',
                   '--entrypoint', '[]', '-w', '/openhands/code/', '--network', 'host',
                   '-e', f'SESSION_API_KEY={key}', '-v', f'{wd}:{wd}', *envs, IMAGE, *cmd)
        assert r.returncode == 0, r.stderr
        names.append(name)
        base = f'http://127.0.0.1:{port}'
        while time.monotonic() - t0 < 120:
            try:
                if requests.get(f'{base}/alive', timeout=2).json() == {'status': 'ok'}:
                    break
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)
        else:
            pytest.fail('no /alive: ' + podman('logs', name).stderr[-3000:])
        print(f'container start -> /alive: {time.monotonic() - t0:.2f} s')

        def act(action):
            r = requests.post(f'{base}/execute_action', json={'action': action},
                              headers={'X-Session-API-Key': key}, timeout=120)
            assert r.status_code == 200, r.text
            return r.json()
        return name, base, act

    yield start
    for n in names:
        podman('rm', '-f', n)
    for d in dirs:
        subprocess.run(['rm', '-rf', d], check=False)


def test_without_the_plugins_python_bash_and_files_still_work(container):
    name, base, act = container(env=[('SANDBOXD_PYTHON', '/nonexistent/python3')])
    obs = act({'action': 'run', 'args': {'command': 'echo bash-works'}})
    assert obs['content'].strip() == 'bash-works', obs
    obs = act({'action': 'run_ipython', 'args': {'code': 'print(1)'}})
    assert obs['observation'] == 'error', obs
    assert obs['content'].startswith('IPython is unavailable:'), obs
    assert '/nonexistent/python3' in obs['content']


def test_slim_browse_is_disabled_and_sigterm_exits_0(container):
    name, base, act = container()
    obs = act({'action': 'browse', 'args': {'url': 'http://127.0.0.1:1/'}})
    assert obs['observation'] == 'error', obs
    assert obs['content'] == 'Browser functionality is not supported or disabled.'
    obs = act({'action': 'run_ipython', 'args': {'code': 'print(6 * 7)'}})
    assert '42' in obs['content'], obs
    assert requests.get(f'{base}/health', timeout=5).status_code == 200
    metrics = requests.get(f'{base}/metrics', timeout=5).text
    assert 'sandboxd_actions_total{kind="browse",outcome="error"} 1' in metrics
    # podman stop sends SIGTERM to the init, which forwards it to sandboxd.
    t0 = time.monotonic()
    r = podman('stop', '-t', '30', name)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30
    code = podman('inspect', '--format', '{{.State.ExitCode}}', name).stdout.strip()
    assert code == '0', podman('logs', name).stderr[-3000:]
