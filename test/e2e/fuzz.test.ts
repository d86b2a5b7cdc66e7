// Protocol fuzzing, CI-sized (10k frames; `npm run drills` runs >= 1,000,000):
// random and mutated frames over several connections against a live cluster.
// drills/lib/fuzz.ts holds the generator and the exact expectations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../drills/lib/fuzz.js';
import { HOME } from '../../drills/lib/load.js';
import { insertBike } from '../../src/dao/bikes.js';
import { startServer } from '../helpers/server.js';
import { auditDatabase, dropDatabase, openDb } from '../helpers/db.js';
import { loggedIn } from '../helpers/users.js';

test('fuzz: 10k random and mutated frames; right Error codes, framing errors close, no crash, bounded memory, rejections in /metrics', { timeout: 300_000 }, async () => {
  const server = await startServer({ workers: 2 });
  try {
    const { client } = await loggedIn(server.port);
    const token = client.token;
    client.close();
    const db = openDb(server.database);
    const bikeIds: number[] = [];
    try {
      for (let i = 0; i < 10; i++) bikeIds.push(await insertBike(db, HOME.lat + 0.001 * i, HOME.lng, Date.now()));
    } finally {
      await db.close();
    }
    const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
    const report = await runFuzz({ server, frames: 10_000, connections: 4, token, bikeIds, seed });
    const summary = `seed ${report.seed}: ${report.frames} frames, ${report.answers} answers, ${report.closedByFault} fault closes, rejections ${report.rejectionsCounted} / metric ${report.rejectionsMetric}, answers ${JSON.stringify(report.byAnswer)}`;
    assert.deepEqual(report.problems, [], summary);
    assert.ok(report.frames >= 10_000, summary);
    assert.ok(report.answers > 9000, summary);
    // Every class was exercised.
    for (const kind of ['valid', 'flipped', 'truncated', 'other-type', 'unknown-type', 'garbage']) assert.ok((report.byKind[kind] ?? 0) > 100, `${kind}: ${summary}`);
    assert.ok((report.byKind['bad-magic'] ?? 0) + (report.byKind['too-large'] ?? 0) > 0, `no framing error was sent: ${summary}`);
    assert.ok((report.byAnswer.UNKNOWN_TYPE ?? 0) > 0 && (report.byAnswer.BAD_REQUEST ?? 0) > 0 && (report.byAnswer.OK ?? 0) > 0, summary);
    assert.equal(report.rejectionsMetric, report.rejectionsCounted, summary);
    // Whatever the fuzz recharged, the ledger holds.
    const audit = await auditDatabase(server.database);
    assert.deepEqual(audit.problems, []);
  } finally {
    await server.stop();
    await dropDatabase(server.database);
  }
});
