// The documents that claim to be generated or copied stay in step with the code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { optionTable } from '../../src/cli/config.js';
import { REQUESTS, replyType } from '../../src/protocol/types.js';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

test('docs/configuration.md holds the option table generated from the schema', () => {
  assert.ok(read('docs/configuration.md').includes(optionTable()), 'regenerate with: npx bikeshare config --markdown');
});

test('docs/protocol.md lists every request type with its answer type and auth flag', () => {
  const doc = read('docs/protocol.md');
  for (const r of REQUESTS) {
    const hex = (n: number) => '0x' + n.toString(16).padStart(4, '0');
    const row = doc.split('\n').find((l) => l.startsWith(`| ${hex(r.id)} | \`${r.request}\``));
    assert.ok(row, `no row for ${r.request}`);
    assert.ok(row.includes(`\`${r.reply}\` ${hex(replyType(r.id))}`), `answer of ${r.request}`);
    assert.ok(row.trim().endsWith(r.auth ? '| yes |' : '| no |'), `auth flag of ${r.request}`);
  }
});
