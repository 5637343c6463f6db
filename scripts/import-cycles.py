"""Fails when files of a crate import each other, directly or around a loop (issue 11).

    python scripts/import-cycles.py [SRC_DIR ...]     (default: src and crates/*/src)

A file's imports are the `crate::…`, `super::…` and `self::…` paths in its code (comments,
strings and `#[cfg(test)] mod tests` left out), each resolved to the longest module prefix
that is a file. `mod` declarations are not imports. A file's use of its own ancestor
modules is not counted either: a module split over a folder (`session/mod.rs` holding the
core type, `session/pump.rs` adding to it) is one unit whose parts may use the core; loops
between sibling files, or across modules, are what this refuses.
"""

import glob
import os
import re
import sys

PATH = re.compile(r'\b(crate|super|self)::((?:[A-Za-z_]\w*::)*[A-Za-z_]\w*)')


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for p in glob.glob(os.path.join(src, '**', '*.rs'), recursive=True):
        parts = os.path.relpath(p, src)[:-3].split(os.sep)
        if parts[-1] in ('mod', 'lib', 'main'):
            parts = parts[:-1]
        out[tuple(parts)] = p
    return out


def code_of(path):
    text = open(path, encoding='utf-8').read()
    text = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def graph(src):
    mods = modules(src)
    g = {m: set() for m in mods}
    for mod, path in mods.items():
        code = code_of(path)
        refs = PATH.findall(code)
        # Paths that start with a child module of this file (`use observe::Finished;` in
        # a mod.rs) are relative to it.
        for child in set(m[-1] for m in mods if m[:-1] == mod and len(m) == len(mod) + 1):
            for rest in re.findall(r'(?<![\w:])' + child + r'::((?:[A-Za-z_]\w*::)*[A-Za-z_]\w*)', code):
                refs.append(('self', child + '::' + rest))
        for head, rest in refs:
            segs = rest.split('::')
            full = {'crate': [], 'super': list(mod[:-1]), 'self': list(mod)}[head] + segs
            for n in range(len(full), 0, -1):
                target = tuple(full[:n])
                if target in mods:
                    if target != mod and mod[: len(target)] != target:
                        g[mod].add(target)
                    break
    return g


def cycles(g):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def main(dirs):
    bad = 0
    for src in dirs:
        g = graph(src)
        for comp in cycles(g):
            names = {m: '/'.join(m) or '(crate root)' for m in comp}
            edges = [f'{names[a]} -> {names[b]}' for a in comp for b in sorted(g[a]) if b in names]
            print(f'{src}: import loop: ' + '; '.join(edges))
            bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(here)
    sys.exit(main(sys.argv[1:] or ['src'] + sorted(glob.glob('crates/*/src'))))
