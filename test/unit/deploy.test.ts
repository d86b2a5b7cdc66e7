// The deployment files (Dockerfile, k8s/, the Helm chart, docker-compose,
// the Grafana dashboard) stay in step with the service: they render, the
// Kubernetes objects validate against the API schema, and every option,
// port, probe path and timeout they name is one the service really has.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { schema, type OptionName } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const file = (p: string) => path.join(ROOT, p);
const read = (p: string) => readFileSync(file(p), 'utf8');

// ---------------------------------------------------------------- options

/** env name -> option name, from the one list of options. */
const OPTION_BY_ENV = new Map<string, OptionName>(Object.entries(schema).map(([name, o]) => [o.env, name as OptionName]));
const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
const defaultOf = (name: OptionName) => schema[name].default as number | string;
/** Environment variables the service's container may carry besides BIKE_* options. */
const NON_OPTION_ENV = new Set(['NODE_ENV', 'NODE_OPTIONS']);

function assertRealOptionEnv(names: Iterable<string>, where: string): void {
  for (const name of names) {
    if (NON_OPTION_ENV.has(name)) continue;
    assert.ok(OPTION_BY_ENV.has(name), `${where}: ${name} is not an option of src/config/schema.ts`);
  }
}

/** The service must start with these variables (strict validation, production rules). */
function assertConfigLoads(env: Record<string, string>, where: string) {
  try {
    return loadConfig({ NODE_ENV: 'production', ...env });
  } catch (err) {
    assert.fail(`${where}: the service would refuse this configuration: ${(err as Error).message}`);
  }
}

const DUMMY_SECRETS = { BIKE_MYSQL_URL: 'mysql://u:p@mysql:3306/bikeshare', BIKE_REDIS_URL: 'redis://redis:6379/0' };

test('every option env name is BIKE_ + the option in UPPER_SNAKE (what the Helm chart derives)', () => {
  for (const [name, o] of Object.entries(schema)) assert.equal(o.env, `BIKE_${upperSnake(name)}`, name);
});

// ---------------------------------------------------------------- k8s/

const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const kubectlMissing = (() => {
  const r = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8' });
  return r.error ? `${KUBECTL} not found (${(r.error as NodeJS.ErrnoException).code}): install kubectl to check k8s/` : null;
})();

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

function kustomize(dir: string): K8sObject[] {
  const r = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `kubectl kustomize ${dir} failed:\n${r.stderr}`);
  const docs = parseAllDocuments(r.stdout);
  for (const d of docs) assert.deepEqual(d.errors, [], `YAML from kubectl kustomize ${dir}`);
  return docs.map((d) => d.toJS()).filter(Boolean);
}

const MODELS: Record<string, { new (data: any): { validate(): void } }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

function assertValidObjects(objects: K8sObject[]): void {
  for (const o of objects) {
    const key = `${o.apiVersion}/${o.kind}`;
    const Model = MODELS[key];
    assert.ok(Model, `${key} ${o.metadata?.name}: no schema to check it against (add its kubernetes-models class)`);
    try {
      new Model(o).validate();
    } catch (err) {
      assert.fail(`${key} ${o.metadata.name} does not validate: ${(err as Error).message}`);
    }
  }
}

let rendered: K8sObject[] | undefined;
const k8s = () => (rendered ??= kustomize(file('k8s')));
const one = (objects: K8sObject[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind} expected, got ${found.length}`);
  return found[0];
};

/** A container port given by name or number, as a number. */
function portNumber(container: any, port: string | number): number {
  if (typeof port === 'number') return port;
  const named = (container.ports ?? []).find((p: any) => p.name === port);
  assert.ok(named, `port "${port}" is not a named port of container ${container.name}`);
  return named.containerPort;
}

/** Seconds a preStop hook waits: exec sleep N, or the native sleep action. */
function preStopSeconds(container: any): number {
  const pre = container.lifecycle?.preStop;
  assert.ok(pre, 'the container needs a preStop pause so endpoints drop before the drain');
  if (pre.sleep) return Number(pre.sleep.seconds);
  const cmd: string[] = pre.exec?.command ?? [];
  const sleepAt = cmd.findIndex((c) => /(^|\/)sleep$/.test(c));
  assert.ok(sleepAt >= 0, `preStop should sleep, got ${JSON.stringify(cmd)}`);
  const seconds = Number(cmd[sleepAt + 1]);
  assert.ok(Number.isFinite(seconds) && seconds > 0, `preStop sleep seconds: ${cmd[sleepAt + 1]}`);
  return seconds;
}

function cpuCores(q: string | number): number {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

/** The bits of a rendered k8s/ the checks below share. */
function deploymentParts(objects: K8sObject[]) {
  const deployment = one(objects, 'Deployment');
  const pod = deployment.spec.template;
  const containers = pod.spec.containers;
  assert.equal(containers.length, 1, 'one container per pod');
  const container = containers[0];
  const envFrom: any[] = container.envFrom ?? [];
  const cmName = envFrom.find((e) => e.configMapRef)?.configMapRef.name;
  const secretName = envFrom.find((e) => e.secretRef)?.secretRef.name;
  assert.ok(cmName, 'envFrom needs a configMapRef');
  assert.ok(secretName, 'envFrom needs a secretRef');
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName);
  const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === secretName);
  assert.ok(configMap, `ConfigMap ${cmName} (envFrom) is not rendered`);
  assert.ok(secret, `Secret ${secretName} (envFrom) is not rendered`);
  const config: Record<string, string> = configMap.data ?? {};
  const option = (name: OptionName) => config[schema[name].env] ?? String(defaultOf(name));
  return { deployment, pod, container, configMap, secret, config, option };
}

describe('k8s/ (kubectl kustomize)', () => {
  const skipIfNoKubectl = (t: TestContext) => {
    if (kubectlMissing) {
      t.skip(kubectlMissing);
      return true;
    }
    return false;
  };

  test('renders the Deployment, Service, ConfigMap, Secret, HPA and PDB (no ServiceMonitor by default)', (t) => {
    if (skipIfNoKubectl(t)) return;
    const kinds = k8s().map((o) => o.kind);
    for (const kind of ['Deployment', 'Service', 'ConfigMap', 'Secret', 'HorizontalPodAutoscaler', 'PodDisruptionBudget']) {
      assert.ok(kinds.includes(kind), `${kind} missing from kubectl kustomize k8s/`);
    }
    assert.ok(!kinds.includes('ServiceMonitor'), 'the ServiceMonitor needs the operator CRDs: keep it out of the default kustomization');
  });

  test('every rendered object validates against the Kubernetes schema', (t) => {
    if (skipIfNoKubectl(t)) return;
    assertValidObjects(k8s());
  });

  test('the monitoring component adds a valid ServiceMonitor on the metrics port', (t) => {
    if (skipIfNoKubectl(t)) return;
    // Components are enabled from an overlay; build a throwaway one.
    const dir = mkdtempSync(path.join(tmpdir(), 'bikeshare-kustomize-'));
    try {
      const rel = (p: string) => path.relative(dir, file(p));
      writeFileSync(
        path.join(dir, 'kustomization.yaml'),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${rel('k8s')}]\ncomponents: [${rel('k8s/monitoring')}]\n`,
      );
      const objects = kustomize(dir);
      assertValidObjects(objects);
      const sm = one(objects, 'ServiceMonitor');
      const service = one(objects, 'Service');
      for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(service.metadata.labels?.[k], v, `ServiceMonitor selects the Service by ${k}`);
      const { option } = deploymentParts(objects);
      for (const ep of sm.spec.endpoints) {
        const sp = service.spec.ports.find((p: any) => p.name === ep.port);
        assert.ok(sp, `ServiceMonitor endpoint port ${ep.port} is not a Service port`);
        assert.equal(sp.port, Number(option('metricsPort')), 'ServiceMonitor scrapes the metrics port');
        assert.equal(ep.path ?? '/metrics', '/metrics');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('ConfigMap keys are real options with production values, and the service accepts them', (t) => {
    if (skipIfNoKubectl(t)) return;
    const { config, secret } = deploymentParts(k8s());
    assertRealOptionEnv(Object.keys(config), 'ConfigMap');
    assert.ok(Object.keys(config).every((k) => k.startsWith('BIKE_')), 'the ConfigMap holds BIKE_* options only');
    assert.equal(config.BIKE_LOG_LEVEL, 'warn');
    assert.equal(config.BIKE_SMS_SENDER, 'log');
    assert.ok(!('BIKE_MYSQL_URL' in config) && !('BIKE_REDIS_URL' in config), 'credentials belong in the Secret');
    const secretData: Record<string, string> = {
      ...Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString()])),
      ...secret.stringData,
    };
    assert.deepEqual(Object.keys(secretData).sort(), ['BIKE_MYSQL_URL', 'BIKE_REDIS_URL']);
    assertConfigLoads({ ...config, ...secretData }, 'k8s ConfigMap + Secret');
  });

  test('probes, ports, Service and scrape annotations agree with BIKE_PORT / BIKE_METRICS_PORT', (t) => {
    if (skipIfNoKubectl(t)) return;
    const objects = k8s();
    const { pod, container, option } = deploymentParts(objects);
    const port = Number(option('port'));
    const metricsPort = Number(option('metricsPort'));

    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(portNumber(container, container.readinessProbe.httpGet.port), metricsPort, 'readiness on the metrics port');
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(portNumber(container, container.livenessProbe.httpGet.port), metricsPort, 'liveness on the metrics port');
    if (container.startupProbe) {
      assert.equal(portNumber(container, container.startupProbe.httpGet.port), metricsPort, 'startup probe on the metrics port');
    }
    const containerPorts: number[] = container.ports.map((p: any) => p.containerPort);
    assert.ok(containerPorts.includes(port), `containerPort ${port} (BIKE_PORT) missing: ${containerPorts}`);
    assert.ok(containerPorts.includes(metricsPort), `containerPort ${metricsPort} (BIKE_METRICS_PORT) missing`);

    const service = one(objects, 'Service');
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(pod.metadata.labels[k], v, `Service selects the pods by ${k}`);
    const targets = service.spec.ports.map((p: any) => portNumber(container, p.targetPort ?? p.port));
    assert.ok(targets.includes(port), 'the Service forwards to the protocol port');
    assert.ok(targets.includes(metricsPort), 'the Service forwards to the metrics port');

    const ann = pod.metadata.annotations ?? {};
    assert.equal(ann['prometheus.io/scrape'], 'true');
    assert.equal(Number(ann['prometheus.io/port']), metricsPort);
    assert.equal(ann['prometheus.io/path'] ?? '/metrics', '/metrics');
  });

  test('termination grace outlasts the preStop pause plus the drain budget', (t) => {
    if (skipIfNoKubectl(t)) return;
    const { pod, container, option } = deploymentParts(k8s());
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    const pause = preStopSeconds(container);
    const drain = Number(option('shutdownTimeoutMs')) / 1000;
    assert.ok(grace > pause + drain, `terminationGracePeriodSeconds ${grace} <= preStop ${pause} s + BIKE_SHUTDOWN_TIMEOUT_MS ${drain} s`);
  });

  test('resources, one worker per CPU of the limit, non-root read-only container', (t) => {
    if (skipIfNoKubectl(t)) return;
    const { pod, container, option } = deploymentParts(k8s());
    const { requests, limits } = container.resources ?? {};
    assert.ok(requests?.cpu && requests?.memory && limits?.cpu && limits?.memory, 'cpu and memory requests and limits');
    assert.equal(Number(option('workers')), cpuCores(limits.cpu), 'BIKE_WORKERS = CPU limit');
    const podSc = pod.spec.securityContext ?? {};
    const sc = container.securityContext ?? {};
    assert.equal(sc.runAsNonRoot ?? podSc.runAsNonRoot, true, 'runAsNonRoot');
    assert.notEqual(sc.runAsUser ?? podSc.runAsUser, 0, 'not uid 0');
    assert.equal(sc.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem');
    assert.equal(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation: false');
  });

  test('the HPA (autoscaling/v2, CPU) and the PDB target the Deployment', (t) => {
    if (skipIfNoKubectl(t)) return;
    const objects = k8s();
    const { deployment, pod } = deploymentParts(objects);
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    assert.deepEqual(
      { kind: hpa.spec.scaleTargetRef.kind, name: hpa.spec.scaleTargetRef.name },
      { kind: 'Deployment', name: deployment.metadata.name },
    );
    assert.ok(hpa.spec.metrics.some((m: any) => m.type === 'Resource' && m.resource.name === 'cpu'), 'scales on CPU');
    assert.ok(hpa.spec.minReplicas >= 2, 'at least 2 replicas: a drain or a crash leaves one serving');
    assert.equal(deployment.spec.replicas, undefined, 'the HPA owns spec.replicas; setting it in the Deployment fights the HPA on every apply');
    const pdb = one(objects, 'PodDisruptionBudget');
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(pod.metadata.labels[k], v, `PDB selects the pods by ${k}`);
  });
});

// ---------------------------------------------------------------- Helm

const CHART = 'deploy/helm/bikeshare';

function templateFiles(dir = file(`${CHART}/templates`)): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? templateFiles(p) : [p];
  });
}

function hasPath(values: unknown, dotted: string): boolean {
  let node: any = values;
  for (const key of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.prototype.hasOwnProperty.call(node, key)) return false;
    node = node[key];
  }
  return true;
}

describe('Helm chart (deploy/helm/bikeshare)', () => {
  const values = parseYaml(read(`${CHART}/values.yaml`));

  test('Chart.yaml is an apiVersion v2 application chart', () => {
    const chart = parseYaml(read(`${CHART}/Chart.yaml`));
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'bikeshare');
    assert.equal(chart.type ?? 'application', 'application');
    assert.match(String(chart.version), /^\d+\.\d+\.\d+/);
    assert.ok(chart.appVersion, 'appVersion (the default image tag)');
  });

  test('values.yaml has the conventional keys', () => {
    for (const key of [
      'replicaCount', 'image.repository', 'image.tag', 'image.pullPolicy', 'imagePullSecrets', 'serviceAccount.create',
      'podAnnotations', 'podSecurityContext', 'securityContext', 'service.type', 'service.port', 'resources',
      'autoscaling.enabled', 'autoscaling.minReplicas', 'autoscaling.maxReplicas', 'autoscaling.targetCPUUtilizationPercentage',
      'nodeSelector', 'tolerations', 'affinity', 'serviceMonitor.enabled', 'config', 'secrets.existingSecret', 'secrets.mysqlUrl', 'secrets.redisUrl',
    ]) {
      assert.ok(hasPath(values, key), `values.yaml: ${key}`);
    }
  });

  test('the templates exist and every .Values path they use is in values.yaml', () => {
    const names = templateFiles().map((p) => path.relative(file(`${CHART}/templates`), p));
    for (const t of ['_helpers.tpl', 'deployment.yaml', 'service.yaml', 'configmap.yaml', 'secret.yaml', 'hpa.yaml', 'pdb.yaml', 'servicemonitor.yaml', 'serviceaccount.yaml', 'NOTES.txt']) {
      assert.ok(names.includes(t), `templates/${t} missing`);
    }
    const used = new Set<string>();
    for (const p of templateFiles()) {
      for (const m of readFileSync(p, 'utf8').matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) used.add(m[1].slice(1));
    }
    assert.ok(used.size > 20, `only ${used.size} .Values paths found: is the regex right?`);
    const missing = [...used].filter((p) => !hasPath(values, p));
    assert.deepEqual(missing, [], 'paths used in templates but absent from values.yaml');
  });

  test('template actions are balanced and every include names a defined template', () => {
    const helpers = read(`${CHART}/templates/_helpers.tpl`);
    const defined = new Set([...helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]));
    for (const name of ['name', 'fullname', 'chart', 'labels', 'selectorLabels', 'serviceAccountName']) {
      assert.ok(defined.has(`bikeshare.${name}`), `_helpers.tpl defines bikeshare.${name}`);
    }
    for (const p of templateFiles()) {
      const text = readFileSync(p, 'utf8');
      const rel = path.relative(ROOT, p);
      const opens = [...text.matchAll(/\{\{-?\s*(if|range|with|define|block)\b/g)].length;
      const ends = [...text.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
      assert.equal(opens, ends, `${rel}: ${opens} if/range/with/define blocks but ${ends} ends`);
      assert.equal((text.match(/\{\{/g) ?? []).length, (text.match(/\}\}/g) ?? []).length, `${rel}: unbalanced {{ }}`);
      for (const m of text.matchAll(/(?:\{\{-?\s*|\(\s*)(?:include|template)\s+"([^"]+)"/g)) assert.ok(defined.has(m[1]), `${rel}: ${m[1]} is not defined`);
    }
  });

  test('every key under config is a real option, and the service accepts the values', () => {
    const config: Record<string, unknown> = values.config;
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
      assert.ok(key in schema, `values.yaml config.${key} is not an option of src/config/schema.ts`);
      assert.ok(!(schema[key as OptionName] as { sensitive?: boolean }).sensitive, `config.${key} is a credential: it goes under secrets`);
      env[`BIKE_${upperSnake(key)}`] = String(value);
    }
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.smsSender, 'log');
    assertConfigLoads({ ...env, ...DUMMY_SECRETS }, 'values.yaml config');
  });

  test('workers match the CPU limit; probes, grace period and ports agree with config', () => {
    const { config } = values;
    assert.equal(Number(config.workers), cpuCores(values.resources.limits.cpu), 'config.workers = resources.limits.cpu');
    assert.equal(values.readinessProbe.httpGet.path, '/readyz');
    assert.equal(values.livenessProbe.httpGet.path, '/healthz');
    // Named port "metrics" is config.metricsPort in templates/deployment.yaml.
    const deployment = read(`${CHART}/templates/deployment.yaml`);
    assert.match(deployment, /name: metrics\s+containerPort: \{\{ \.Values\.config\.metricsPort \}\}/);
    assert.match(deployment, /name: protocol\s+containerPort: \{\{ \.Values\.config\.port \}\}/);
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) assert.equal(values[probe].httpGet.port, 'metrics', `${probe} on the metrics port`);
    const drain = Number(config.shutdownTimeoutMs ?? defaultOf('shutdownTimeoutMs')) / 1000;
    assert.ok(values.terminationGracePeriodSeconds > values.preStopSleepSeconds + drain, 'terminationGracePeriodSeconds > preStop + drain');
    assert.equal(values.podSecurityContext.runAsNonRoot, true);
    assert.equal(values.securityContext.readOnlyRootFilesystem, true);
  });
});

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  op: string;
  args: string;
}

function dockerfile(): Instruction[][] {
  const lines = read('Dockerfile').split('\n');
  const joined: string[] = [];
  let current = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw) && current === '') continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continuation
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    current += line;
    if (current.trim()) joined.push(current.trim());
    current = '';
  }
  const stages: Instruction[][] = [];
  for (const line of joined) {
    const [, op, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    const ins = { op: op.toUpperCase(), args };
    if (ins.op === 'FROM') stages.push([]);
    if (ins.op === 'ARG' && stages.length === 0) continue;
    stages.at(-1)!.push(ins);
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = dockerfile();
  const final = stages.at(-1)!;
  const all = (op: string) => final.filter((i) => i.op === op);

  test('is multi-stage: a build stage runs npm run build, the runtime stage npm ci --omit=dev', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    assert.ok(stages.slice(0, -1).some((s) => s.some((i) => i.op === 'RUN' && /npm run build/.test(i.args))), 'a build stage runs npm run build');
    assert.ok(all('RUN').some((i) => /npm ci\b.*--omit=dev/.test(i.args)), 'runtime installs production dependencies only');
    for (const i of all('COPY')) {
      const parts = i.args.split(/\s+/).filter((a) => !a.startsWith('--'));
      const sources = parts.slice(0, -1);
      for (const s of sources) assert.match(s, /^(\/app\/)?(dist|bin|package\*?\.json|package-lock\.json)\/?$/, `runtime COPY of ${s}: only dist/, bin/, package*.json`);
    }
  });

  test('CMD is exec-form node on dist/main.js serve, never npm', () => {
    const cmds = all('CMD');
    assert.equal(cmds.length, 1);
    const cmd = JSON.parse(cmds[0].args);
    assert.ok(Array.isArray(cmd), 'exec form (a JSON array)');
    assert.deepEqual(cmd, ['node', 'dist/main.js', 'serve']);
    for (const e of all('ENTRYPOINT')) {
      const entry = JSON.parse(e.args);
      assert.ok(Array.isArray(entry), 'ENTRYPOINT in exec form');
      assert.match(entry[0], /(^|\/)(tini|dumb-init)$/, 'only an init may wrap node');
    }
  });

  test('runs as a non-root USER', () => {
    const users = all('USER');
    assert.ok(users.length > 0, 'USER in the runtime stage');
    const user = users.at(-1)!.args.trim().split(':')[0];
    assert.ok(!['root', '0'].includes(user), `USER ${user} is root`);
    // Kubernetes' runAsNonRoot can only verify a numeric user.
    assert.match(user, /^\d+$/, 'numeric USER');
  });

  test('sets production env, exposes the protocol and metrics ports', () => {
    const env = all('ENV').map((i) => i.args).join(' ');
    assert.match(env, /\bNODE_ENV=production\b/);
    assert.match(env, /\bBIKE_LOG_LEVEL=warn\b/);
    assertRealOptionEnv([...env.matchAll(/\b(BIKE_[A-Z0-9_]+)=/g)].map((m) => m[1]), 'Dockerfile ENV');
    const exposed = all('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
    assert.ok(exposed.includes(Number(defaultOf('port'))), 'EXPOSE the protocol port');
    assert.ok(exposed.includes(Number(defaultOf('metricsPort'))), 'EXPOSE the metrics port');
  });

  test('.dockerignore keeps node_modules, dist and .git out of the context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim().replace(/\/$/, ''));
    for (const p of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(p), `.dockerignore: ${p}`);
  });
});

// ---------------------------------------------------------------- docker-compose

/** `${VAR:-default}` -> default (what compose uses with VAR unset). */
const composeDefaults = (v: unknown) => String(v).replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_, d) => d ?? '');

describe('deploy/docker-compose.yml', () => {
  const compose = parseYaml(read('deploy/docker-compose.yml'));
  const services: Record<string, any> = compose.services;
  const envOf = (s: any): Record<string, string> =>
    Array.isArray(s.environment)
      ? Object.fromEntries(s.environment.map((e: string) => [e.split('=')[0], e.split('=').slice(1).join('=')]))
      : { ...(s.environment ?? {}) };

  test('has MySQL/MariaDB, Redis, the service, Prometheus and Grafana', () => {
    const images = Object.values(services).map((s) => String(s.image ?? ''));
    for (const img of [/^(mysql|mariadb):/, /^redis:/, /^prom\/prometheus:/, /^grafana\/grafana:/]) {
      assert.ok(images.some((i) => img.test(i)), `a service with image ${img}`);
    }
    const bike = services.bikeshare;
    assert.ok(bike?.build, 'the bikeshare service builds the image');
    const context = path.resolve(file('deploy'), bike.build.context ?? bike.build);
    assert.ok(existsSync(path.join(context, bike.build.dockerfile ?? 'Dockerfile')), 'build context holds the Dockerfile');
  });

  test("the service's env names are real options, and the service accepts the values", () => {
    const env = envOf(services.bikeshare);
    assertRealOptionEnv(Object.keys(env), 'docker-compose bikeshare environment');
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, composeDefaults(v)]));
    assertConfigLoads(resolved, 'docker-compose bikeshare environment');
    const metricsPort = resolved.BIKE_METRICS_PORT ?? String(defaultOf('metricsPort'));
    const port = resolved.BIKE_PORT ?? String(defaultOf('port'));
    const published = (services.bikeshare.ports ?? []).map((p: string) => String(p).split(':').at(-1));
    assert.ok(published.includes(port) && published.includes(metricsPort), `ports ${port} and ${metricsPort} published`);
  });

  test('the service waits for healthy stores', () => {
    const deps = services.bikeshare.depends_on;
    for (const [name, s] of Object.entries(services)) {
      if (!/^(mysql|mariadb|redis):/.test(String(s.image ?? ''))) continue;
      assert.ok(s.healthcheck, `${name} has a healthcheck`);
      assert.equal(deps?.[name]?.condition, 'service_healthy', `bikeshare depends_on ${name}: service_healthy`);
    }
  });

  test("Prometheus scrapes the service's metrics port; Grafana gets the datasource and the dashboard", () => {
    const prom = Object.values(services).find((s) => /^prom\/prometheus:/.test(s.image));
    const promMount = prom.volumes.find((v: string) => v.includes('prometheus.yml')).split(':')[0];
    const promConfig = parseYaml(readFileSync(path.resolve(file('deploy'), promMount), 'utf8'));
    const metricsPort = composeDefaults(envOf(services.bikeshare).BIKE_METRICS_PORT ?? defaultOf('metricsPort'));
    const targets = promConfig.scrape_configs.flatMap((c: any) => (c.static_configs ?? []).flatMap((s: any) => s.targets));
    assert.ok(targets.includes(`bikeshare:${metricsPort}`), `Prometheus scrapes bikeshare:${metricsPort}, has ${targets}`);

    const grafana = Object.values(services).find((s) => /^grafana\/grafana:/.test(s.image));
    const mounts = new Map<string, string>(grafana.volumes.map((v: string) => [v.split(':')[1], v.split(':')[0]]));
    const provisioning = path.resolve(file('deploy'), mounts.get('/etc/grafana/provisioning')!);
    const datasources = readdirSync(path.join(provisioning, 'datasources')).flatMap((f) => parseYaml(readFileSync(path.join(provisioning, 'datasources', f), 'utf8')).datasources);
    assert.ok(datasources.some((d: any) => d.type === 'prometheus' && d.url === 'http://prometheus:9090'), 'a Prometheus datasource');
    const providers = readdirSync(path.join(provisioning, 'dashboards')).flatMap((f) => parseYaml(readFileSync(path.join(provisioning, 'dashboards', f), 'utf8')).providers);
    const dashboardDir = providers[0].options.path;
    const dashboardMount = [...mounts].find(([inside]) => inside.startsWith(dashboardDir + '/'));
    assert.ok(dashboardMount, `a dashboard mounted under ${dashboardDir}`);
    assert.equal(path.resolve(file('deploy'), dashboardMount[1]), file('deploy/grafana/bikeshare.json'));
  });
});

// ---------------------------------------------------------------- Grafana dashboard

describe('deploy/grafana/bikeshare.json', () => {
  const dashboard = JSON.parse(read('deploy/grafana/bikeshare.json'));
  const panels: any[] = dashboard.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]);
  const targets = panels.flatMap((p) => (p.targets ?? []).map((t: any) => ({ panel: p.title, ...t })));

  test('uses a datasource variable everywhere', () => {
    const variable = dashboard.templating.list.find((v: any) => v.type === 'datasource');
    assert.ok(variable, 'a datasource template variable');
    assert.equal(variable.query, 'prometheus');
    const ref = new Set([`\${${variable.name}}`, `$${variable.name}`]);
    for (const p of panels.filter((p) => p.type !== 'row')) assert.ok(ref.has(p.datasource?.uid), `panel ${p.title} uses the datasource variable`);
    for (const t of targets) assert.ok(ref.has(t.datasource?.uid), `a query of ${t.panel} uses the datasource variable`);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  });

  test('covers traffic, errors, latency, connections, pool, event loop, replicas, rejections, restarts and store health', () => {
    const exprs = targets.map((t) => t.expr).join('\n');
    for (const needle of [
      'rate(bike_requests_total', 'code!="OK"', 'histogram_quantile(0.5,', 'histogram_quantile(0.99,', 'bike_request_duration_seconds_bucket',
      'bike_connections_open', 'bike_db_pool_connections{', 'state="in_use"', 'bike_db_pool_waiting', 'nodejs_eventloop_lag',
      'up{', 'bike_workers_live', 'bike_frames_rejected_total', 'bike_worker_restarts_total', 'bike_redis_up', 'bike_mysql_up',
    ]) {
      assert.ok(exprs.includes(needle), `no query uses ${needle}`);
    }
  });
});

// ---------------------------------------------------------------- docs

test('docs/deploy.md covers kustomize, Helm and compose', () => {
  const doc = read('docs/deploy.md');
  for (const needle of ['kubectl apply -k k8s', 'helm install', 'docker compose -f deploy/docker-compose.yml', 'max_connections']) {
    assert.ok(doc.includes(needle), `docs/deploy.md mentions ${needle}`);
  }
});
