// Where a worker's CPU went: reads a .cpuprofile written by `node --cpu-prof`
// and prints (1) time by layer (idle, GC, socket syscalls, ioredis, mysql2,
// protobufjs, pino, prom-client, this project's own code by folder) and (2)
// the functions with the most self time. With --requests N it also prints the
// non-idle microseconds per request.
//
//   node --import tsx bench/cpu-profile.ts prof/CPU.*.<worker pid>.0.001.cpuprofile [--requests N] [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string' }, top: { type: 'string', default: '25' } },
});
if (positionals.length !== 1) {
  console.error('usage: bench/cpu-profile.ts FILE.cpuprofile [--requests N] [--top 25]');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

const parent = new Map<number, ProfileNode>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);

/** The layer a frame belongs to, by its script's path; native frames take their caller's layer. */
function layerOf(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(idle)') return 'idle (waiting in epoll)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === 'writeBuffer' || functionName === 'writev' || functionName === 'writeUtf8String' || functionName === 'writeLatin1String') {
    return 'socket writes (syscalls)';
  }
  if (functionName === 'onStreamRead') return 'socket reads (syscalls)';
  const m = /node_modules\/(@[^/]+\/[^/]+|[^/]+)\//.exec(url);
  if (m) return m[1];
  const own = /\/(src|dist)\/([^/]+)\//.exec(url);
  if (own) return `bikeshare ${own[2]}/`;
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') {
    const up = parent.get(node.id);
    return up ? layerOf(up) : '(program)';
  }
  return 'other';
}

let total = 0;
let idle = 0;
const byLayer = new Map<string, number>();
const byFunction = new Map<string, number>();
for (const n of profile.nodes) {
  const t = selfUs.get(n.id) ?? 0;
  if (!t) continue;
  total += t;
  const layer = layerOf(n);
  if (layer.startsWith('idle')) idle += t;
  byLayer.set(layer, (byLayer.get(layer) ?? 0) + t);
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + t);
}

const pct = (t: number) => ((100 * t) / total).toFixed(1).padStart(5) + '%';
const busy = total - idle;
console.log(`${positionals[0]}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${pct(busy).trim()})`);
const requests = opts.requests ? Number(opts.requests) : 0;
if (requests > 0) console.log(`busy time per request: ${(busy / requests).toFixed(1)} us over ${requests} requests`);
console.log('\nby layer (self time):');
for (const [layer, t] of [...byLayer].sort((a, b) => b[1] - a[1])) console.log(`${pct(t)}  ${layer}`);
console.log(`\ntop ${opts.top} functions (self time):`);
for (const [key, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top))) console.log(`${pct(t)}  ${key}`);
