"""Regenerates the schemas in this folder from their sources (see README.md).

    pip download --no-deps -d /tmp/kv kubernetes-validate==1.37.0
    python deploy/kubernetes/schemas/update.py /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl \
        docs/spec/agent-sandbox/crds

Kubernetes: the strict JSON schemas of KUBERNETES_VERSION for the kinds the manifests use,
with `_definitions.json` cut down to the definitions those kinds reach (nothing else is
changed). agent-sandbox: the v1beta1 `openAPIV3Schema` of each CRD, unchanged, as JSON.
"""

import json
import pathlib
import sys
import zipfile

import yaml

KUBERNETES_VERSION = 'v1.33.0'
KINDS = ['deployment-apps-v1', 'service-v1', 'secret-v1', 'pod-v1']
CRDS = {
    'extensions.agents.x-k8s.io_sandboxtemplates.yaml': 'sandboxtemplate-extensions-v1beta1.json',
    'extensions.agents.x-k8s.io_sandboxwarmpools.yaml': 'sandboxwarmpool-extensions-v1beta1.json',
    'extensions.agents.x-k8s.io_sandboxclaims.yaml': 'sandboxclaim-extensions-v1beta1.json',
    'agents.x-k8s.io_sandboxes.yaml': 'sandbox-agents-v1beta1.json',
}
HERE = pathlib.Path(__file__).resolve().parent
# Kind files refer into _definitions.json by this URI; definitions refer to each other locally.
PREFIXES = ('/api/_definitions.json#/$defs/', '#/$defs/')


def refs(node, out):
    if isinstance(node, dict):
        r = node.get('$ref')
        for prefix in PREFIXES:
            if isinstance(r, str) and r.startswith(prefix):
                out.add(r[len(prefix):])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def dump(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + '\n')


def main(wheel, crd_dir):
    base = f'kubernetes_validate/kubernetes-json-schema/{KUBERNETES_VERSION}-local-strict/'
    with zipfile.ZipFile(wheel) as z:
        defs_doc = json.loads(z.read(base + '_definitions.json'))
        kinds = {k: json.loads(z.read(f'{base}{k}.json')) for k in KINDS}
    defs = defs_doc['$defs']
    wanted, todo = set(), set()
    for schema in kinds.values():
        refs(schema, todo)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        refs(defs[name], todo)
    defs_doc['$defs'] = {k: defs[k] for k in sorted(wanted)}
    out = HERE / 'kubernetes'
    dump(out / '_definitions.json', defs_doc)
    for k, schema in kinds.items():
        dump(out / f'{k}.json', schema)
    for crd_file, name in CRDS.items():
        crd = yaml.safe_load((pathlib.Path(crd_dir) / crd_file).read_text())
        version = next(v for v in crd['spec']['versions'] if v['name'] == 'v1beta1')
        dump(HERE / 'agent-sandbox' / name, version['schema']['openAPIV3Schema'])
    print(f'{len(wanted)} Kubernetes definitions kept of {len(defs)}')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
