"""Validates every manifest in deploy/kubernetes offline against the committed schemas.

    python deploy/kubernetes/validate.py [--self-test]

Strict about unknown fields, as `kubectl apply --validate=strict` is: the Kubernetes
schemas are the "-strict" ones (additionalProperties: false), and the agent-sandbox CRD
schemas (OpenAPI v3, which prunes unknown fields instead of refusing them) get
additionalProperties: false on every object that lists its properties and does not say
x-kubernetes-preserve-unknown-fields; their `metadata` is checked as Kubernetes' ObjectMeta.
A manifest of a kind without a schema here is an error too.

--self-test also checks that the validator refuses each manifest with an unknown field
added at its top, in its spec, and in its first container (when it has one).
"""

import copy
import json
import pathlib
import sys

import jsonschema
import referencing
import yaml

HERE = pathlib.Path(__file__).resolve().parent
SCHEMAS = HERE / 'schemas'
K8S = 'https://kubernetes.io/api/'
OBJECT_META = {'$ref': f'{K8S}_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'}

# (apiVersion, kind) -> schema file
KINDS = {
    ('apps/v1', 'Deployment'): 'kubernetes/deployment-apps-v1.json',
    ('v1', 'Service'): 'kubernetes/service-v1.json',
    ('v1', 'Secret'): 'kubernetes/secret-v1.json',
    ('v1', 'Pod'): 'kubernetes/pod-v1.json',
    ('extensions.agents.x-k8s.io/v1beta1', 'SandboxTemplate'):
        'agent-sandbox/sandboxtemplate-extensions-v1beta1.json',
    ('extensions.agents.x-k8s.io/v1beta1', 'SandboxWarmPool'):
        'agent-sandbox/sandboxwarmpool-extensions-v1beta1.json',
    ('extensions.agents.x-k8s.io/v1beta1', 'SandboxClaim'):
        'agent-sandbox/sandboxclaim-extensions-v1beta1.json',
    ('agents.x-k8s.io/v1beta1', 'Sandbox'): 'agent-sandbox/sandbox-agents-v1beta1.json',
}


def strict_openapi(node):
    """A CRD's structural schema as a strict JSON schema (see the module doc)."""
    if isinstance(node, list):
        return [strict_openapi(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_openapi(v) for k, v in node.items()}
    if out.pop('nullable', False) and isinstance(out.get('type'), str):
        out['type'] = [out['type'], 'null']
    if ('properties' in out and 'additionalProperties' not in out
            and not out.get('x-kubernetes-preserve-unknown-fields')):
        out['additionalProperties'] = False
    return out


def load_schema(rel):
    schema = json.loads((SCHEMAS / rel).read_text())
    if rel.startswith('agent-sandbox/'):
        schema = strict_openapi(schema)
        schema['properties']['metadata'] = OBJECT_META
        schema.setdefault('required', [])
        for key in ('apiVersion', 'kind', 'metadata'):
            if key not in schema['required']:
                schema['required'].append(key)
    return schema


def registry():
    defs = json.loads((SCHEMAS / 'kubernetes/_definitions.json').read_text())
    res = referencing.Resource.from_contents(defs, default_specification=referencing.jsonschema.DRAFT202012)
    return referencing.Registry().with_resource(f'{K8S}_definitions.json', res)


def validators():
    reg = registry()
    out = {}
    for key, rel in KINDS.items():
        schema = load_schema(rel)
        schema.setdefault('$id', K8S + pathlib.PurePath(rel).name)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        out[key] = cls(schema, registry=reg)
    return out


def documents():
    for path in sorted(HERE.glob('*.yaml')):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                yield f'{path.name}#{i}', doc


def errors(vals, doc):
    key = (doc.get('apiVersion'), doc.get('kind'))
    if key not in vals:
        return [f'no schema for apiVersion {key[0]!r} kind {key[1]!r}']
    return [f'{"/".join(map(str, e.absolute_path)) or "(top)"}: {e.message}'
            for e in sorted(vals[key].iter_errors(doc), key=lambda e: list(map(str, e.path)))]


def first_container(doc):
    spec = doc.get('spec') or {}
    for path in (('template', 'spec'), ('podTemplate', 'spec'), ()):
        node = spec
        for p in path:
            node = (node or {}).get(p)
        if isinstance(node, dict) and node.get('containers'):
            return node['containers'][0]
    return None


def self_test(vals, docs):
    failures = []
    for name, doc in docs:
        mutants = {'top': lambda d: d.__setitem__('unknownTopField', 1)}
        if isinstance(doc.get('spec'), dict):
            mutants['spec'] = lambda d: d['spec'].__setitem__('unknownSpecField', 1)
        if first_container(doc) is not None:
            mutants['container'] = lambda d: first_container(d).__setitem__('imagePullPolcy', 'Always')
        for where, mutate in mutants.items():
            bad = copy.deepcopy(doc)
            mutate(bad)
            if not errors(vals, bad):
                failures.append(f'{name}: an unknown field in {where} was accepted')
    return failures


def main(argv):
    vals = validators()
    docs = list(documents())
    if not docs:
        print('no manifests found', file=sys.stderr)
        return 1
    problems = []
    for name, doc in docs:
        problems += [f'{name} ({doc.get("kind")}): {e}' for e in errors(vals, doc)]
    if '--self-test' in argv:
        problems += self_test(vals, docs)
    for p in problems:
        print(p, file=sys.stderr)
    kinds = sorted({d.get('kind') for _, d in docs})
    print(f'{len(docs)} manifests ({", ".join(kinds)}): '
          f'{"valid" if not problems else f"{len(problems)} problems"}')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
