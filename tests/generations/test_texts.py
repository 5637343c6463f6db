"""Every row of docs/spec/compat-latest-texts.md that applies to an action sandboxd serves, asked
once as the 0.20 client asks it and once as the latest client does, with both answers
asserted side by side: the latest client gets the latest server's text, the 0.20 client
keeps the 0.20 server's (or sandboxd's documented fix where the reference had a bug).

Each test is named after the rows it covers, by their IDs in that file (`test_b1_b2_...` =
rows B1 and B2): B = §1 bash, S = §2 server, E = §3 editor, W = §4 browser, I = §5 IPython.

Runs against the real binary through the shared conformance harness
(tests/generations/conftest.py)."""

import base64
import os
import struct
import time
import zlib

import pytest
import requests

from ohconf import (LaunchedServer, assert_extras_keys, exit_code, extras, metadata,
                    obs_type)

OLD_HELP = ("You may wait longer to see additional output by sending empty command '', "
            "send other commands to interact with the current process, "
            "or send keys to interrupt/kill the command.")
TMPL = ("You may wait longer to see additional output by sending empty command '', "
        'send other commands to interact with the current process, '
        'send keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before '
        'sending your new command, '
        'or use the timeout parameter in execute_bash for future commands.')


def not_executed_old(cmd):
    return ('\n[Your command "' + cmd + '" is NOT executed. The previous command was timed '
            'out but still running. Above is the output of the previous command. You may '
            "wait longer to see additional output of the previous command by sending empty "
            "command '', send other commands to interact with the current process, or send "
            'keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before '
            'sending your new command.]')


def not_executed_new(cmd):
    return ('\n[Your command "' + cmd + '" is NOT executed. The previous command is still '
            'running - You CANNOT send new commands until the previous command is completed. '
            'By setting `is_input` to `true`, you can interact with the current process: '
            + TMPL + ']')


REVIEW = ('Review the changes and make sure they are as expected. '
          'Edit the file again if necessary.')
REVIEW_INSERT = ('Review the changes and make sure they are as expected (correct '
                 'indentation, no duplicate lines, etc). Edit the file again if necessary.')


def cat_n(description, lines, start=1):
    body = '\n'.join(f'{i + start:6}\t{line}' for i, line in enumerate(lines))
    return f"Here's the result of running `cat -n` on {description}:\n{body}\n"


def put(rt, path, data: bytes):
    rt.ok(f"echo '{base64.b64encode(data).decode()}' | base64 -d > '{path}'")


def latest_run(rt, command, timeout=None, is_input=False, hidden=False, wire_timeout=None):
    action = rt.latest_run_action_dict(command, timeout=timeout, is_input=is_input,
                                       hidden=hidden)
    if wire_timeout is not None:
        action['timeout'] = wire_timeout
    return rt.execute(action)


def old_text(obs):
    """What the 0.20 agent reads from an editor answer."""
    if obs_type(obs) == 'edit':
        return extras(obs)['formatted_output_and_error']
    return obs['content']


def new_text(obs):
    assert obs_type(obs) in ('edit', 'read'), obs
    return obs['content']


def new_edit(rt, command, path, **kw):
    obs = rt.latest_edit(command, path, **kw)
    assert_extras_keys(obs, 'latest')
    return new_text(obs)


def old_edit(rt, command, path, **kw):
    obs = rt.edit(command, path, **kw)
    assert_extras_keys(obs)
    return old_text(obs)


def interrupt(rt, latest: bool):
    if latest:
        latest_run(rt, 'C-c', is_input=True)
    else:
        rt.run('C-c', timeout=10)


# ---- docs/spec/compat-latest-texts.md §1 bash --------------------------------------------


def test_b1_b2_hard_timeout_suffix_and_number(shell):
    rt = shell
    obs = rt.run('sleep 5', timeout=1)
    assert metadata(obs)['suffix'] == f'\n[The command timed out after 1 seconds. {OLD_HELP}]'
    interrupt(rt, latest=False)
    # The latest client's float, and even an int from it, print as a Python float.
    for wire, shown in ((1, '1.0'), (1.0, '1.0'), (1.5, '1.5')):
        obs = latest_run(rt, 'sleep 5', timeout=1, wire_timeout=wire)
        assert exit_code(obs) == -1
        assert metadata(obs)['suffix'] == (
            f'\n[The command timed out after {shown} seconds. {TMPL}]'), wire
        interrupt(rt, latest=True)
    # A 0.20 client's float prints as sent.
    action = rt.run_action_dict('sleep 5', timeout=1)
    action['timeout'] = 1.0
    obs = rt.execute(action)
    assert metadata(obs)['suffix'].startswith('\n[The command timed out after 1.0 seconds. You may')
    interrupt(rt, latest=False)


@pytest.fixture(scope='module')
def default_rt(request):
    """A server started without NO_CHANGE_TIMEOUT_SECONDS (each generation's default)."""
    if request.config.getoption('--server-url'):
        pytest.skip('needs a server launched by the suite')
    server = LaunchedServer(request.config)
    server.template = 'env -u NO_CHANGE_TIMEOUT_SECONDS ' + server.template
    rt = server.start()
    try:
        yield rt
    finally:
        server.stop()


@pytest.mark.slow
def test_b3_no_change_timeout_default_per_generation(default_rt):
    rt = default_rt
    t0 = time.monotonic()
    obs = latest_run(rt, 'sleep 60')
    assert metadata(obs)['suffix'] == (
        f'\n[The command has no new output after 10 seconds. {TMPL}]')
    assert 9 < time.monotonic() - t0 < 25
    interrupt(rt, latest=True)
    t0 = time.monotonic()
    obs = rt.run('sleep 90')
    assert metadata(obs)['suffix'] == (
        f'\n[The command has no new output after 30 seconds. {OLD_HELP}]')
    assert 29 < time.monotonic() - t0 < 50
    interrupt(rt, latest=False)


def test_b4_b5_not_executed_while_running(shell):
    rt = shell
    # Latest: refused after a no-change timeout, a special key too unless is_input.
    obs = latest_run(rt, 'sleep 30')
    assert exit_code(obs) == -1 and 'no new output' in metadata(obs)['suffix']
    obs = latest_run(rt, 'ls')
    assert metadata(obs)['suffix'] == not_executed_new('ls')
    assert metadata(obs)['prefix'].endswith('[Below is the output of the previous command.]\n')
    assert exit_code(obs) == -1
    obs = latest_run(rt, 'C-c')
    assert metadata(obs)['suffix'] == not_executed_new('C-c')
    obs = latest_run(rt, 'C-c', is_input=True)
    assert metadata(obs)['suffix'].endswith('CTRL+C was sent.]'), obs
    # 0.20: refused only after a hard timeout; keys always go through.
    obs = rt.run('sleep 30', timeout=2)
    assert 'timed out after 2 seconds' in metadata(obs)['suffix']
    obs = rt.run('ls')
    assert metadata(obs)['suffix'] == not_executed_old('ls')
    obs = rt.run('C-c', timeout=10)
    assert metadata(obs)['suffix'].endswith('CTRL+C was sent.]'), obs


def test_b6_text_after_a_no_change_timeout(shell):
    rt = shell
    obs = rt.run('read x && echo "got $x"')
    assert exit_code(obs) == -1
    obs = rt.run('hello')  # 0.20: typed into the running program
    assert 'got hello' in obs['content'] and exit_code(obs) == 0
    obs = latest_run(rt, 'read y && echo "got $y"')
    assert exit_code(obs) == -1
    obs = latest_run(rt, 'hello')  # latest: refused without is_input
    assert metadata(obs)['suffix'] == not_executed_new('hello')
    obs = latest_run(rt, 'hello', is_input=True)
    assert 'got hello' in obs['content'] and exit_code(obs) == 0


def test_b7_b8_b9_at_an_idle_prompt(shell):
    rt = shell
    for obs in (rt.run('C-c', timeout=10), latest_run(rt, 'C-c')):
        assert metadata(obs)['suffix'].endswith('CTRL+C was sent.]'), obs
    for cmd in ('C-c', 'echo typed'):
        obs = latest_run(rt, cmd, is_input=True)
        assert obs['content'] == 'ERROR: No previous running command to interact with.'
        assert extras(obs)['command'] == '' and exit_code(obs) == -1
    assert rt.run('')['content'] == (
        'ERROR: No previous command to continue from. '
        'Previous command has to be timeout to be continued.')
    obs = latest_run(rt, '')
    assert obs['content'] == 'ERROR: No previous running command to retrieve logs from.'
    assert latest_run(rt, '', is_input=True)['content'] == obs['content']


def test_b13_hidden_is_echoed_for_the_latest_client(rt):
    assert extras(rt.run('echo a', hidden=True))['hidden'] is False
    obs = latest_run(rt, 'echo a', hidden=True)
    assert extras(obs)['hidden'] is True
    assert_extras_keys(obs, 'latest')


def test_b14_long_output_is_cut_for_the_latest_client(rt):
    full = rt.run('seq 1 10000')['content']
    assert len(full) == 48893 and '[... Observation truncated' not in full
    cut = latest_run(rt, 'seq 1 10000')['content']
    marker = '\n[... Observation truncated due to length ...]\n'
    assert cut == full[:15000] + marker + full[-15000:]
    # hidden output is not cut (the reference's rule)
    assert latest_run(rt, 'seq 1 10000', hidden=True)['content'] == full


# ---- docs/spec/compat-latest-texts.md §2 server ------------------------------------------


def tiny_png() -> bytes:
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00\xff\x00\x00')) + chunk(b'IEND', b''))


def latest_read(rt, path):
    return rt.execute({'action': 'read', 'timeout': 120.0, 'args': {
        'path': path, 'start': 0, 'end': -1, 'thought': '', 'security_risk': -1,
        'impl_source': 'default', 'view_range': None}})


def test_s2_binary_reads(rt, wd):
    blob = f'{wd}/blob.bin'
    put(rt, blob, bytes(range(256)) * 4)
    assert rt.read(blob)['content'] == f'File could not be decoded as utf-8: {blob}.'
    obs = latest_read(rt, blob)
    assert obs_type(obs) == 'error' and obs['content'] == 'ERROR_BINARY_FILE'
    # Relative paths are sniffed where the read resolves them (the shell's cwd).
    rt.ok(f'cd {wd}')
    assert latest_read(rt, 'blob.bin')['content'] == 'ERROR_BINARY_FILE'
    rt.ok(f'cd {rt.workdir}')
    # Media keep their data URL for both (the latest server's check lost it: a bug).
    png = f'{wd}/pic.png'
    put(rt, png, tiny_png())
    url = 'data:image/png;base64,' + base64.b64encode(tiny_png()).decode()
    assert rt.read(png)['content'] == url
    assert latest_read(rt, png)['content'] == url
    # The editor's view: the latest server refuses first, 0.20 gets the editor's text.
    obs = rt.latest_view(blob)
    assert obs_type(obs) == 'error' and obs['content'] == 'ERROR_BINARY_FILE'
    assert rt.view(blob)['content'] == (
        f'ERROR:\nFile validation failed for {blob}: File appears to be binary and this '
        'file type cannot be read or edited by this tool.')


def test_s3_view_path_as_sent(rt, wd):
    assert extras(rt.view(f'{wd}/'))['path'] == wd
    assert extras(rt.latest_view(f'{wd}/'))['path'] == f'{wd}/'


def test_s4_edit_content_and_diff(rt, wd):
    p = f'{wd}/a.py'
    obs = rt.latest_edit('create', p, file_text='x\n')
    assert obs['content'] == f'File created successfully at: {p}'
    assert extras(obs)['diff'] == f'--- {p}\n+++ {p}\n@@ -0,0 +1 @@\n+x'
    obs = rt.latest_edit('insert', p, insert_line='abc', new_str='y')
    assert obs['content'] == "ERROR:\nInvalid insert_line value: 'abc'. Expected an integer."
    q = f'{wd}/b.py'
    obs = rt.edit('create', q, file_text='x\n')
    assert extras(obs)['formatted_output_and_error'] == f'File created successfully at: {q}'
    assert obs['content'] == f'--- {q}\n+++ {q}\n@@ -0,0 +1 @@\n+x'
    assert 'diff' not in extras(obs)


# ---- docs/spec/compat-latest-texts.md §3 editor ------------------------------------------


def test_e1_directory_view(rt, wd):
    d = f'{wd}/w'
    rt.ok(f'mkdir -p {d}/sub && touch {d}/a.txt {d}/sub/b.txt {d}/.hidden')
    head = f"Here's the files and directories up to 2 levels deep in {d}, excluding hidden items:\n"
    note = (f"1 hidden files/directories in this directory are excluded. "
            f"You can use 'ls -la {d}' to see them.")
    assert rt.view(d)['content'] == f'{head}{d}\n{d}/a.txt\n{d}/sub\n{d}/sub/b.txt\n\n\n{note}'
    assert rt.latest_view(d)['content'] == (
        f'{head}{d}/\n{d}/a.txt\n{d}/sub/\n{d}/sub/b.txt\n\n{note}')


def test_e2_tabs(rt, wd):
    a, b = f'{wd}/a.py', f'{wd}/b.py'
    for p in (a, b):
        rt.write(p, 'def f():\n\tprint("Hello, World!")')
    old = old_edit(rt, 'str_replace', a, old_str='World', new_str='Universe')
    assert '     2\t        print("Hello, Universe!")\n' in old
    new = new_edit(rt, 'str_replace', b, old_str='World', new_str='Universe')
    assert '     2\t\tprint("Hello, Universe!")\n' in new
    for p in (a, b):  # both files keep their TAB (sandboxd's fix for 0.20)
        # (the terminal would render a TAB as spaces: make it visible first)
        assert '~print("Hello, Universe!")' in rt.ok(f"tr '\\t' '~' < {p}")


def test_e3_e4_line_count(rt, wd):
    p = f'{wd}/two.txt'
    rt.write(p, 'a\nb')  # write adds the final newline
    msg = ("ERROR:\nInvalid `view_range` parameter: [0, 1]. Its first element `0` should be "
           "within the range of lines of the file: [1, {}].")
    assert rt.view(p, [0, 1])['content'] == msg.format(3)
    assert rt.latest_view(p, [0, 1])['content'] == msg.format(2)
    e = f'{wd}/empty.txt'
    rt.ok(f': > {e}')
    assert rt.view(e, [1, 1])['content'] == cat_n(e, [''])
    assert rt.latest_view(e, [1, 1])['content'] == (
        "ERROR:\nInvalid `view_range` parameter: [1, 1]. Its first element `1` should be "
        "within the range of lines of the file: [1, 0].")


def test_e5_end_past_the_file(rt, wd):
    p = f'{wd}/two.txt'
    rt.write(p, 'x\ny')
    assert rt.view(p, [1, 10])['content'] == (
        "ERROR:\nInvalid `view_range` parameter: [1, 10]. Its second element `10` should be "
        "smaller than the number of lines in the file: `3`.")
    assert rt.latest_view(p, [1, 10])['content'] == (
        "NOTE: We only show up to 2 since there're only 2 lines in this file.\n"
        + cat_n(p, ['x', 'y']))


def test_e6_range_to_the_end(rt, wd):
    p = f'{wd}/f.py'
    rt.write(p, 'def f():\n\treturn 1')
    assert rt.view(p, [1, -1])['content'] == cat_n(p, ['def f():', '        return 1', ''])
    assert rt.latest_view(p, [1, -1])['content'] == cat_n(p, ['def f():', '\treturn 1'])


def test_e8_insert_range(rt, wd):
    a, b = f'{wd}/a.txt', f'{wd}/b.txt'
    for p in (a, b):
        rt.write(p, 'l1\nl2\nl3')
    assert new_edit(rt, 'insert', b, insert_line=4, new_str='X') == (
        'ERROR:\nInvalid `insert_line` parameter: 4. It should be within the range of '
        'allowed values: [0, 3]')
    assert old_edit(rt, 'insert', a, insert_line=5, new_str='X') == (
        'ERROR:\nInvalid `insert_line` parameter: 5. It should be within the range of lines '
        'of the file: [0, 4]')
    assert old_edit(rt, 'insert', a, insert_line=4, new_str='X').startswith('The file ')


def test_e9_insert_at_the_end_keeps_lines_and_mode(rt, wd):
    a, b = f'{wd}/a.txt', f'{wd}/b.txt'
    for p in (a, b):
        rt.ok(f"printf 'Line 1\\nLine 2\\nLine 3' > {p} && chmod 664 {p}")
    old_edit(rt, 'insert', a, insert_line=3, new_str='X')
    assert rt.ok(f'cat {a}; echo "|"') == 'Line 1\nLine 2\nLine 3\nX|'
    out = new_edit(rt, 'insert', b, insert_line=3, new_str='X')
    # The reference glues X onto line 3 and leaves mode 0600; sandboxd does neither.
    assert rt.ok(f'cat {b}; echo "|"') == 'Line 1\nLine 2\nLine 3\nX\n|'
    assert cat_n('a snippet of the edited file', ['Line 1', 'Line 2', 'Line 3', 'X', '']) in out
    assert rt.ok(f'stat -c %a {b}') == '664'


def test_e10_insert_snippet(rt, wd):
    a, b = f'{wd}/a.txt', f'{wd}/b.txt'
    body = '\n'.join(f'r{i}' for i in range(1, 16))
    for p in (a, b):
        rt.write(p, body)
    shown = ['r7', 'r8', 'r9', 'r10', 'A', 'B', 'r11', 'r12', 'r13', 'r14']
    assert old_edit(rt, 'insert', a, insert_line=10, new_str='A\nB') == (
        f'The file {a} has been edited. '
        + cat_n('a snippet of the edited file', shown, 7) + REVIEW_INSERT)
    assert new_edit(rt, 'insert', b, insert_line=10, new_str='A\nB') == (
        f'The file {b} has been edited. '
        + cat_n('a snippet of the edited file', shown + [''], 7) + REVIEW_INSERT)


def test_e11_replace_snippet(rt, wd):
    a, b = f'{wd}/a.txt', f'{wd}/b.txt'
    body = '\n'.join(f'line{i}' for i in range(1, 21))
    for p in (a, b):
        rt.write(p, body)

    def lines(first, last):
        return ['LINE10' if i == 10 else f'line{i}' for i in range(first, last + 1)]
    assert old_edit(rt, 'str_replace', a, old_str='line10', new_str='LINE10') == (
        f'The file {a} has been edited. ' + cat_n(f'a snippet of {a}', lines(6, 14), 6) + REVIEW)
    assert new_edit(rt, 'str_replace', b, old_str='line10', new_str='LINE10') == (
        f'The file {b} has been edited. '
        + cat_n(f'a snippet of {b}', lines(7, 14) + [''], 7) + REVIEW)


def test_e12_stripped_retry(rt, wd):
    a, b = f'{wd}/a.txt', f'{wd}/b.txt'
    for p in (a, b):
        rt.write(p, 'line4\nline5\nline6')
    assert old_edit(rt, 'str_replace', a, old_str='  line5  ', new_str='LINE5') == (
        f'ERROR:\nNo replacement was performed, old_str `  line5  ` did not appear verbatim in {a}.')
    assert new_edit(rt, 'str_replace', b, old_str='  line5  ', new_str='LINE5').startswith(
        f'The file {b} has been edited.')
    assert rt.ok(f'cat {b}') == 'line4\nLINE5\nline6'
    assert new_edit(rt, 'str_replace', b, old_str=' gone ', new_str='x') == (
        f'ERROR:\nNo replacement was performed, old_str `gone` did not appear verbatim in {b}.')


def test_e13_occurrence_lines(rt, wd):
    a, b = f'{wd}/a.txt', f'{wd}/b.txt'
    for p in (a, b):
        rt.write(p, 'aaaa\nb\naaaa')
    msg = ('ERROR:\nNo replacement was performed. Multiple occurrences of old_str `aa` in '
           'lines {}. Please ensure it is unique.')
    assert old_edit(rt, 'str_replace', a, old_str='aa', new_str='x') == msg.format(
        '[1, 1, 1, 3, 3, 3]')
    assert new_edit(rt, 'str_replace', b, old_str='aa', new_str='x') == msg.format('[1, 3]')
    assert new_edit(rt, 'str_replace', b, old_str='', new_str='x') == (
        'ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines '
        '[1, 2, 3, 4]. Please ensure it is unique.')


def test_e14_relative_path_hint(rt, wd):
    name = os.path.basename(wd)
    rt.ok(f'cd {wd}')
    try:
        assert rt.view('nope.txt')['content'] == (
            'ERROR:\nInvalid `path` parameter: nope.txt. The path should be an absolute path, '
            f'starting with `/`. Maybe you meant {wd}/nope.txt?')
    finally:
        rt.ok(f'cd {rt.workdir}')
    assert rt.latest_view('nope.txt')['content'] == (
        'ERROR:\nInvalid `path` parameter: nope.txt. The path should be an absolute path, '
        'starting with `/`.')
    assert rt.latest_view(name)['content'].endswith(f' Maybe you meant {wd}?')


def test_e15_binary_edits_get_the_validation_text(rt, wd):
    p = f'{wd}/rand.bin'
    put(rt, p, bytes(range(256)) * 8)
    msg = (f'ERROR:\nFile validation failed for {p}: File appears to be binary and this file '
           'type cannot be read or edited by this tool.')
    # Not the latest server's leaked Python TypeError.
    assert new_edit(rt, 'str_replace', p, old_str='a', new_str='b') == msg
    assert old_edit(rt, 'str_replace', p, old_str='a', new_str='b') == msg


def test_e16_large_files(rt, wd):
    p = f'{wd}/big.txt'
    rt.ok(f'head -c {11 * 1024 * 1024} /dev/zero | tr "\\0" a > {p}')
    msg = (f'ERROR:\nFile validation failed for {p}: File is too large (11.0MB). '
           'Maximum allowed size is 10MB.')
    assert rt.latest_view(p)['content'] == msg
    assert rt.view(p)['content'] == msg


def test_e17_view_only_file_types(rt, wd):
    a, b = f'{wd}/a.pdf', f'{wd}/b.pdf'
    assert new_edit(rt, 'create', b, file_text='x') == (
        f'ERROR:\nInvalid `path` parameter: {b}. The path {b} points to a binary file (.pdf) '
        'and only the `view` command can be used on supported binary files.')
    assert old_edit(rt, 'create', a, file_text='x') == f'File created successfully at: {a}'


def test_e20_undo_history_holds_ten_states(rt, wd):
    p = f'{wd}/h.txt'
    rt.write(p, 's0')
    for i in range(11):
        new_edit(rt, 'str_replace', p, old_str=f's{i}', new_str=f's{i + 1}')
    for _ in range(10):
        assert new_edit(rt, 'undo_edit', p).startswith(f'Last edit to {p} undone successfully.')
    assert new_edit(rt, 'undo_edit', p) == f'ERROR:\nNo edit history found for {p}.'
    assert rt.ok(f'cat {p}') == 's1'


# ---- docs/spec/compat-latest-texts.md §5 IPython -----------------------------------------


def latest_ipython(rt, code, timeout):
    action = rt.ipython_action_dict(code, timeout=timeout, include_extra=False)
    action['timeout'] = float(timeout)
    action['args']['security_risk'] = -1
    return rt.execute(action)


def test_i1_cell_timeout_number(rt):
    obs = rt.ipython('import time; time.sleep(5)', timeout=2, include_extra=False)
    assert obs['content'].endswith('[Execution timed out (2 seconds).]'), obs['content']
    obs = latest_ipython(rt, 'import time; time.sleep(5)', 2)
    assert obs['content'].endswith('[Execution timed out (2.0 seconds).]'), obs['content']


def test_i2_images(rt):
    data = base64.b64encode(tiny_png()).decode()
    code = ("import base64\nfrom IPython.display import Image, display\n"
            f"display(Image(data=base64.b64decode('{data}')))")
    obs = rt.ipython(code, include_extra=False)
    assert f'![image](data:image/png;base64,{data})' in obs['content']
    assert 'image_urls' not in extras(obs)
    obs = latest_ipython(rt, code, 30)
    assert extras(obs)['image_urls'] == [f'data:image/png;base64,{data}']
    # The text parts alone, as the latest server joins them.
    assert obs['content'] == '<IPython.core.display.Image object>'
    assert_extras_keys(obs, 'latest')


# ---- docs/spec/compat-latest-texts.md §4 file viewer (latest client only) ----------------


def test_w10_file_viewer_title(rt, wd):
    port = int(rt.base_url.rsplit(':', 1)[1])
    viewer = None
    for p in range(port + 1, port + 64):
        try:
            r = requests.get(f'http://127.0.0.1:{p}/', timeout=2)
        except requests.RequestException:
            continue
        # The viewer takes the first free port after the server's.
        if r.ok and r.json() == {'status': 'File viewer server is running'}:
            viewer = p
            break
    assert viewer, 'no file viewer next to the server'
    png = f'{wd}/test_image.png'
    put(rt, png, tiny_png())
    page = requests.get(f'http://127.0.0.1:{viewer}/view', params={'path': png}, timeout=10).text
    assert '<title>File Viewer - test_image.png</title>' in page
    assert 'alt="test_image.png"' in page
