// The Grafana dashboard (deploy/grafana/bikeshare.json) only queries metrics
// that a real server exports: a live server (one worker) serves a few
// requests and a bad frame, and every metric name in the dashboard's PromQL
// must be in its /metrics (or be Prometheus' own `up`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startServer, type TestServer } from '../helpers/server.js';
import { dropDatabase } from '../helpers/db.js';
import { loggedIn } from '../helpers/users.js';

const DASHBOARD = new URL('../../deploy/grafana/bikeshare.json', import.meta.url);

/** Series Prometheus makes itself for every target. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** Metric names in a PromQL expression (functions, keywords, labels, strings, durations and Grafana variables left out). */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery selectors
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+|ms|[smhdwy])?\b/gi, ' '); // numbers and durations
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = s.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(after)) continue; // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** `name{a="x",b="y"}` selectors of an expression: metric name -> label names it matches on. */
function selectors(expr: string): Array<{ name: string; labels: string[] }> {
  return [...expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}/g)].map((m) => ({
    name: m[1],
    labels: [...m[2].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]),
  }));
}

interface Exposition {
  /** family name -> type, from the # TYPE lines */
  families: Map<string, string>;
  /** sample name -> label names seen on its samples */
  samples: Map<string, Set<string>>;
}

function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      families.set(type[1], type[2]);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!sample) continue;
    const labels = samples.get(sample[1]) ?? new Set<string>();
    for (const l of (sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) labels.add(l[1]);
    samples.set(sample[1], labels);
  }
  return { families, samples };
}

/** Is `name` (possibly a histogram's _bucket/_sum/_count series) exported? */
function exported(name: string, exp: Exposition): boolean {
  if (exp.families.has(name) || exp.samples.has(name)) return true;
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (!m) return false;
  const type = exp.families.get(m[1]);
  return m[2] === 'bucket' ? type === 'histogram' : type === 'histogram' || type === 'summary';
}

/** Sends a frame with a bad magic number; the server answers and closes. */
async function sendBadFrame(port: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.write(Buffer.alloc(64, 0x41));
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 3000))]);
  socket.destroy();
}

test('the PromQL name parser', () => {
  assert.deepEqual(metricNames('sum by (type) (rate(bike_requests_total{job=~"$job", code!="OK"}[$__rate_interval]))'), ['bike_requests_total']);
  assert.deepEqual(
    metricNames('histogram_quantile(0.99, sum by (le) (rate(bike_request_duration_seconds_bucket{job=~"${job}"}[5m]))) / clamp_min(x_total, 1e-9)'),
    ['bike_request_duration_seconds_bucket', 'x_total'],
  );
  assert.deepEqual(metricNames('count(up{job="a"} == 1) and on (instance) foo offset 5m'), ['up', 'foo']);
});

test('every metric the dashboard queries is exported by a live server', async () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const panels: any[] = dashboard.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]);
  const exprs: string[] = panels.flatMap((p) => (p.targets ?? []).map((t: any) => t.expr)).filter(Boolean);
  for (const v of dashboard.templating?.list ?? []) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    const lv = v.type === 'query' && typeof q === 'string' ? /label_values\(\s*([^,)]+)/.exec(q) : null;
    if (lv) exprs.push(lv[1]);
  }
  assert.ok(exprs.length >= 10, `only ${exprs.length} queries in the dashboard`);

  let server: TestServer | undefined;
  try {
    server = await startServer({ workers: 1 });
    const { client } = await loggedIn(server.port);
    try {
      await client.ping(7);
      await client.balance();
      await client.recharge(500, randomUUID());
      await client.recharge(-1, randomUUID()).catch(() => undefined); // an answer with an error code
    } finally {
      client.close();
    }
    await sendBadFrame(server.port);

    // Pool and store gauges are set by each worker's health tick (every second).
    let text = '';
    for (const deadline = Date.now() + 10_000; ; ) {
      const res: Response = await fetch(server.metricsUrl('/metrics'));
      assert.equal(res.status, 200);
      text = await res.text();
      if (/^bike_db_pool_connections\{[^}]*state="in_use"/m.test(text) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const exp = parseExposition(text);
    assert.ok(exp.samples.has('bike_requests_total'), 'the requests were counted');
    assert.ok(exp.samples.has('bike_frames_rejected_total'), 'the bad frame was counted');

    const queried = new Set(exprs.flatMap(metricNames));
    assert.ok(queried.size >= 10, `only ${queried.size} metric names parsed: ${[...queried]}`);
    const missing = [...queried].filter((name) => !SYNTHETIC.has(name) && !exported(name, exp));
    assert.deepEqual(missing, [], `queried by the dashboard but not in /metrics (have: ${[...exp.families.keys()].join(', ')})`);

    // Label matchers name labels the series really have (target labels job/instance come from Prometheus).
    for (const expr of exprs) {
      for (const { name, labels } of selectors(expr)) {
        const seen = exp.samples.get(name);
        if (!seen || SYNTHETIC.has(name)) continue;
        for (const label of labels) {
          if (label === 'job' || label === 'instance') continue;
          assert.ok(seen.has(label), `${name} has no label "${label}" (has ${[...seen].join(', ') || 'none'}): ${expr}`);
        }
      }
    }
  } finally {
    if (server) {
      await server.stop();
      await dropDatabase(server.database);
    }
  }
});
