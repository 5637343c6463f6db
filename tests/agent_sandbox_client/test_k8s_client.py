"""The real agent-sandbox client, k8s-agent-sandbox[grpc] (PyPI), driving sandboxd's
agent-sandbox API without a cluster: its sandboxd in-cluster connection mode with a
k8s_helper whose Sandbox object reports 127.0.0.1 as the pod IP, so files.* go to the /v1
REST API and commands.run to the gRPC ProcessService, as they would inside a pod.

The server binary is $SANDBOXD_BIN (default: target/debug/sandboxd of this checkout)."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests
from k8s_agent_sandbox.models import SandboxdInClusterConnectionConfig
from k8s_agent_sandbox.sandbox import Sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get('SANDBOXD_BIN') or os.path.join(ROOT, 'target', 'debug', 'sandboxd')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def api_port(_n=[0]):
    """A free port below the ephemeral range (where the HTTP port and the file viewer next
    to it are picked), so the API's listeners never race them."""
    while True:
        _n[0] += 1
        port = 20000 + (os.getpid() * 7919 + _n[0] * 13) % 12000
        with socket.socket() as s:
            try:
                s.bind(('0.0.0.0', port))
                return port
            except OSError:
                pass


class LocalPod:
    """Stands in for the Kubernetes API: the Sandbox object of a pod on this machine."""

    def get_sandbox(self, name, namespace='default'):
        return {'metadata': {'name': name}, 'status': {'podIPs': [{'ip': '127.0.0.1'}]}}


@pytest.fixture(scope='module')
def server():
    workdir = tempfile.mkdtemp(prefix='sandboxd-k8s-')
    http, rest, grpc = free_port(), api_port(), api_port()
    env = dict(os.environ, RUST_LOG='warn', PYENV_REHASH_TIMEOUT='1')
    env.pop('SESSION_API_KEY', None)
    proc = subprocess.Popen(
        [BIN, str(http), '--working-dir', workdir, '--agent-sandbox',
         '--agent-sandbox-rest-port', str(rest), '--agent-sandbox-grpc-port', str(grpc)],
        env=env, stdin=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        assert proc.poll() is None, 'sandboxd exited during start-up'
        try:
            if requests.get(f'http://127.0.0.1:{rest}/v1/health', timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        assert time.time() < deadline, 'sandboxd did not start'
        time.sleep(0.05)
    yield {'rest': rest, 'grpc': grpc, 'workdir': os.path.realpath(workdir), 'proc': proc}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)


@pytest.fixture
def sandbox(server):
    sb = Sandbox(
        'local-claim', 'local-sandbox',
        connection_config=SandboxdInClusterConnectionConfig(
            mode='in-cluster-pod-ip', rest_port=server['rest'], grpc_port=server['grpc']),
        k8s_helper=LocalPod())
    yield sb
    sb.close_connection()


def test_files_write_read_list_exists_delete(sandbox, server):
    sandbox.files.write('src/notes.txt', b'hello from the client')
    assert open(os.path.join(server['workdir'], 'src', 'notes.txt'), 'rb').read() == \
        b'hello from the client'
    assert sandbox.files.read('src/notes.txt') == b'hello from the client'
    sandbox.files.write('src/text.txt', 'unicode: \u00e9')
    entries = {e.name: e for e in sandbox.files.list('src')}
    assert set(entries) == {'notes.txt', 'text.txt'}
    assert entries['notes.txt'].type == 'file'
    assert entries['notes.txt'].size == len(b'hello from the client')
    assert entries['notes.txt'].mode == '0644'
    assert entries['notes.txt'].modified.tzinfo is not None
    assert sandbox.files.exists('src/notes.txt')
    assert not sandbox.files.exists('src/absent.txt')
    sandbox.files.delete('src', recursive=True)
    assert not sandbox.files.exists('src')
    assert not os.path.exists(os.path.join(server['workdir'], 'src'))


def test_files_write_streams_a_file_object(sandbox, tmp_path):
    big = tmp_path / 'big.bin'
    big.write_bytes(os.urandom(3 << 20))
    with open(big, 'rb') as f:
        sandbox.files.write('big.bin', f)
    assert sandbox.files.read('big.bin') == big.read_bytes()
    sandbox.files.delete('big.bin')


def test_commands_run(sandbox):
    r = sandbox.commands.run('echo out; echo err >&2; exit 3')
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out) == ('out\n', 'err\n', 3, False)
    r = sandbox.commands.run('echo $GREETING; pwd', env={'GREETING': 'hi'}, cwd='.')
    assert r.stdout.splitlines()[0] == 'hi'
    assert r.exit_code == 0


def test_commands_run_with_a_timeout_that_fires(sandbox, server):
    marker = os.path.join(server['workdir'], 'sleeper.pid')
    t = time.time()
    r = sandbox.commands.run(f'echo $$ > {marker}; exec sleep 30', command_timeout=1)
    assert r.timed_out and r.exit_code == 124, r
    assert time.time() - t < 10
    pid = int(open(marker).read())
    deadline = time.time() + 5
    while os.path.exists(f'/proc/{pid}') and time.time() < deadline:
        with open(f'/proc/{pid}/stat') as f:
            if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                break
        time.sleep(0.02)
    alive = os.path.exists(f'/proc/{pid}')
    if alive:
        with open(f'/proc/{pid}/stat') as f:
            alive = f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    assert not alive, 'the timed-out command was killed'
    # The server goes on serving.
    assert sandbox.commands.run('echo after').stdout == 'after\n'


def test_reflection_through_grpc(server):
    """What grpcurl does first: list the services through server reflection."""
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    with grpc.insecure_channel(f'127.0.0.1:{server["grpc"]}') as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(list_services='')
        resp = next(stub.ServerReflectionInfo(iter([req]), timeout=10))
        names = [s.name for s in resp.list_services_response.service]
    assert 'process.v1.ProcessService' in names
