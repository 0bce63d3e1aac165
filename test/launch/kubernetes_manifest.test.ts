import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';

// docs/LAUNCH.md's Kubernetes recipe. `kubectl apply --dry-run=client` needs an API server to map
// kinds, which a test machine lacks, so the structure kubectl would check is checked here.
const FILE = fileURLToPath(new URL('../../../examples/kubernetes/smolcluster-job.yaml', import.meta.url));

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('Kubernetes manifest (Indexed Job + headless Service)', () => {
  const docs = parseAllDocuments(readFileSync(FILE, 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, d.errors.join('; '));
    return d.toJSON() as Obj;
  });
  const service = docs.find((d) => d.kind === 'Service')!;
  const job = docs.find((d) => d.kind === 'Job')!;

  it('is a v1 Service and a batch/v1 Job, each with a name', () => {
    assert.deepEqual(docs.map((d) => [d.apiVersion, d.kind]), [['v1', 'Service'], ['batch/v1', 'Job']]);
    for (const d of docs) assert.match(d.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS-1123 name');
  });

  it('the Service is headless and selects the Job\'s pods; the pods\' subdomain is the Service', () => {
    assert.equal(service.spec.clusterIP, 'None');
    assert.deepEqual(service.spec.selector, { 'job-name': job.metadata.name });
    assert.equal(job.spec.template.spec.subdomain, service.metadata.name);
  });

  it('an Indexed Job whose index is the rank, the world size its completions, the master pod 0 of the Service', () => {
    const spec = job.spec;
    assert.equal(spec.completionMode, 'Indexed');
    assert.equal(spec.parallelism, spec.completions, 'every rank runs at once');
    assert.equal(spec.template.spec.restartPolicy, 'Never');
    const c = spec.template.spec.containers[0];
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(Number(env.WORLD_SIZE), spec.completions);
    assert.equal(env.MASTER_ADDR, `${job.metadata.name}-0.${service.metadata.name}`);
    assert.equal(Number(env.MASTER_PORT), service.spec.ports[0].port);
    assert.ok(env.SMOLCLUSTER_TOKEN.secretKeyRef, 'the token comes from a Secret');
    assert.match(c.command.join(' '), /RANK=\$JOB_COMPLETION_INDEX exec node dist\/src\/cli\/main\.js worker /);
  });
});
