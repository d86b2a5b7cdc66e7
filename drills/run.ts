// `npm run drills [-- --short] [-- --only a,b]`: the failure drills against
// the real cluster (docs/operations.md). Each drill runs its own instance on
// its own database under a steady SDK load, injects one fault, and ends with
// the audit and the reconciliation of what clients were told. Prints a table;
// exits 1 if any drill failed.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { DRILLS, fdLimit } from './lib/drills.js';
import type { DrillResult } from './lib/harness.js';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    only: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
  },
});

if (values.list) {
  for (const d of DRILLS) console.log(`${d.name.padEnd(18)} ${d.proves}`);
  process.exit(0);
}

// 5000 idle connections need more than the usual 1024 open files: raise the
// soft limit up to the hard one by running again under a shell.
const NEEDED_FDS = 12_000;
if (fdLimit() < NEEDED_FDS && !process.env.DRILLS_FD_RAISED) {
  const r = spawnSync('sh', ['-c', `ulimit -n ${NEEDED_FDS} 2>/dev/null || ulimit -n hard 2>/dev/null; exec "$@"`, 'sh', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, DRILLS_FD_RAISED: '1' },
  });
  process.exit(r.status ?? 1);
}

const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : null;
const unknown = only?.filter((n) => !DRILLS.some((d) => d.name === n)) ?? [];
if (unknown.length) {
  console.error(`unknown drill(s): ${unknown.join(', ')}; known: ${DRILLS.map((d) => d.name).join(', ')}`);
  process.exit(2);
}
const selected = DRILLS.filter((d) => !only || only.includes(d.name));
const log = values.quiet ? undefined : (line: string) => console.error(`${new Date().toISOString().slice(11, 23)} ${line}`);

const results: DrillResult[] = [];
const started = Date.now();
console.error(`drills (${values.short ? 'short' : 'full'}): ${selected.map((d) => d.name).join(', ')}; open-files limit ${fdLimit()}`);
for (const d of selected) {
  const t0 = Date.now();
  log?.(`[${d.name}] start: ${d.proves}`);
  const result = await d.run({ short: values.short, log });
  results.push(result);
  log?.(`[${d.name}] ${result.pass ? 'PASS' : 'FAIL'} in ${Math.round((Date.now() - t0) / 1000)} s`);
}

function loadCell(r: DrillResult): string {
  const errs = Object.entries(r.load.errors)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  return `${r.load.sent} sent, ${r.load.ok} ok${errs ? `; ${errs}` : ''}`;
}

const rows = results.map((r) => [r.name, loadCell(r), r.pass ? 'pass' : `FAIL: ${r.reasons[0]}${r.reasons.length > 1 ? ` (+${r.reasons.length - 1} more)` : ''}`, r.money]);
const header = ['drill', 'load (requests)', 'result', 'money check (audit + reconciliation)'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
console.log('');
for (const r of results) {
  for (const n of r.notes) console.log(`${r.name}: ${n}`);
  for (const reason of r.reasons.slice(1)) console.log(`${r.name}: FAIL: ${reason}`);
}
const failed = results.filter((r) => !r.pass);
console.log(`\n${results.length - failed.length}/${results.length} drills passed in ${Math.round((Date.now() - started) / 1000)} s${failed.length ? `; failed: ${failed.map((r) => r.name).join(', ')}` : ''}`);
process.exit(failed.length ? 1 : 0);
