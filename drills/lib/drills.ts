// The drills: each one runs the real cluster under the steady load, injects
// one fault, checks what the contract promises about it, and ends with the
// money check (harness.ts). Used by drills/run.ts and by the hardening tests.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { BikeClient, ServerError } from '../../src/client/client.js';
import { ErrorCode } from '../../src/protocol/messages.js';
import { MessageType } from '../../src/protocol/types.js';
import { encodeFrame } from '../../src/protocol/header.js';
import { codec } from '../../src/protocol/codec.js';
import { insertBike } from '../../src/dao/bikes.js';
import { TcpProxy } from '../../test/helpers/proxy.js';
import { openDb } from '../../test/helpers/db.js';
import { REDIS_URL } from '../../test/helpers/server.js';
import { loggedIn } from '../../test/helpers/users.js';
import { drill, type Drill, type DrillContext, type DrillOptions } from './harness.js';
import { RawConn, errorOf, errorName, frameOf, type Frame } from './raw.js';
import { scrape, total } from './metrics.js';
import { workerPids, isAlive, isListening, rssKb, sleep, waitFor } from './procs.js';
import { runFuzz } from './fuzz.js';
import { HOME } from './load.js';

const readyz = (ctx: DrillContext) => fetch(ctx.server.metricsUrl('/readyz')).then((r) => r.status, () => 0);
const errorsOf = (ctx: DrillContext, ...codes: string[]) => codes.reduce((n, c) => n + (ctx.load.stats.errors[c] ?? 0), 0);

async function pingFresh(port: number, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  const client = await BikeClient.connect({ host: '127.0.0.1', port, timeoutMs });
  try {
    await client.ping(7);
    return Date.now() - started;
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------

export const workerKill: Drill = {
  name: 'worker-kill',
  proves: 'kill -9 of a worker mid-load: the primary forks a new one, clients reconnect, retried writes apply exactly once',
  run: (o) =>
    drill('worker-kill', o, async (ctx) => {
      await ctx.start({ env: { BIKE_RESTART_BACKOFF_MS: '100' } });
      const primary = ctx.server.process.pid!;
      await ctx.startLoad();
      const kills = ctx.short ? 1 : 3;
      for (let i = 0; i < kills; i++) {
        await sleep(ctx.short ? 1500 : 4000);
        const before = workerPids(primary);
        const victim = before[i % before.length];
        process.kill(victim, 'SIGKILL');
        ctx.log(`killed worker ${victim}`);
        const back = await waitFor(() => {
          const now = workerPids(primary);
          return now.length === before.length && !now.includes(victim);
        }, 30_000);
        if (!ctx.check(back, `worker ${victim} was not replaced within 30 s`)) return;
        const ready = await waitFor(async () => (await readyz(ctx)) === 200, 30_000);
        ctx.check(ready, '/readyz did not come back to 200 after the restart');
        await ctx.progress(20, 20_000, `after killing worker ${victim}`);
      }
      ctx.check(isAlive(primary), 'the primary died');
      const m = await scrape(ctx.server);
      ctx.note(`worker restarts: ${total(m, 'bike_worker_restarts_total')}`);
    }),
};

export const primaryKill: Drill = {
  name: 'primary-kill',
  proves: 'kill -9 of the primary: its workers exit (no orphan keeps the port), a new instance on the same port and database takes over',
  run: (o) =>
    drill('primary-kill', o, async (ctx) => {
      await ctx.start({ env: { BIKE_SHUTDOWN_TIMEOUT_MS: '5000' } });
      const port = ctx.server.port;
      const primary = ctx.server.process.pid!;
      await ctx.startLoad();
      await sleep(ctx.short ? 1500 : 4000);
      const workers = workerPids(primary);
      ctx.server.process.kill('SIGKILL');
      await ctx.server.exited;
      const killedAt = Date.now();
      const gone = await waitFor(() => workers.every((p) => !isAlive(p)), 15_000);
      ctx.check(gone, `orphan workers still alive 15 s after the primary died: ${workers.filter(isAlive).join(', ')}`);
      ctx.note(`workers ${workers.join(', ')} exited ${Date.now() - killedAt} ms after the primary`);
      ctx.check(!isListening(port), `something still listens on port ${port} after the primary and its workers died`);
      await ctx.start({ port });
      ctx.note(`new instance ready on port ${port} ${Date.now() - killedAt} ms after the kill`);
      await ctx.progress(20, 20_000, 'after the restart');
      await sleep(ctx.short ? 1000 : 4000);
    }),
};

/** Both store cuts: the store behind a proxy goes away for 5 s and comes back. */
function storeCut(store: 'redis' | 'mysql'): Drill {
  const name = `${store}-cut`;
  return {
    name,
    proves: `${store === 'redis' ? 'Redis' : 'MariaDB'} unreachable for 5 s: SERVICE_UNAVAILABLE (never INTERNAL), /readyz 503, automatic recovery after restore${store === 'mysql' ? ', no stuck pool' : ''}`,
    run: (o) =>
      drill(name, o, async (ctx) => {
        const target = store === 'redis' ? new URL(REDIS_URL) : new URL('mysql://127.0.0.1:3306/');
        const proxy = new TcpProxy(target.hostname, Number(target.port));
        await proxy.listen();
        ctx.onCleanup(() => proxy.close());
        const env: Record<string, string> = { BIKE_STORE_TIMEOUT_MS: '2000' };
        if (store === 'redis') env.BIKE_REDIS_URL = `redis://127.0.0.1:${proxy.port}${target.pathname}`;
        else env.BIKE_MYSQL_URL = `mysql://root@127.0.0.1:${proxy.port}/${ctx.database}`;
        await ctx.start({ env });
        await ctx.startLoad();
        await sleep(ctx.short ? 1500 : 4000);
        const before = ctx.load.snapshot();
        proxy.cut();
        ctx.log('store cut');
        await sleep(2500);
        const ready = await readyz(ctx);
        ctx.check(ready === 503, `/readyz answered ${ready} while ${store} was cut (want 503)`);
        await sleep(2500);
        const during = ctx.load.snapshot();
        proxy.restore();
        ctx.log('store restored');
        const unavailable = (during.errors.SERVICE_UNAVAILABLE ?? 0) - (before.errors.SERVICE_UNAVAILABLE ?? 0);
        const internal = (during.errors.INTERNAL ?? 0) - (before.errors.INTERNAL ?? 0);
        ctx.check(unavailable > 0, `no SERVICE_UNAVAILABLE answer while ${store} was cut`);
        ctx.check(internal === 0, `${internal} INTERNAL answers while ${store} was cut (want SERVICE_UNAVAILABLE)`);
        ctx.note(`while cut: ${unavailable} SERVICE_UNAVAILABLE, ${internal} INTERNAL, ${(during.errors.TIMEOUT ?? 0) - (before.errors.TIMEOUT ?? 0)} TIMEOUT`);
        const recovered = await ctx.recovery(20_000);
        if (ctx.check(recovered >= 0, `requests still failing 20 s after ${store} came back`)) ctx.note(`first success ${recovered} ms after restore`);
        const readyAgain = await waitFor(async () => (await readyz(ctx)) === 200, 20_000);
        ctx.check(readyAgain, `/readyz not 200 within 20 s of ${store} coming back`);
        if (store === 'mysql') {
          // No stuck pool: a burst wider than every worker's pool succeeds at once, no retry.
          const token = ctx.load.users[0].client!.token;
          const clients = await Promise.all(Array.from({ length: 4 }, () => BikeClient.connect({ host: '127.0.0.1', port: ctx.server.port, token, timeoutMs: 10_000 })));
          const burst = await Promise.allSettled(Array.from({ length: 64 }, (_, i) => (i % 2 ? clients[i % 4].balance() : clients[i % 4].accountRecords('', 100))));
          for (const c of clients) c.close();
          const failed = burst.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
          ctx.check(failed.length === 0, `pool stuck after restore: ${failed.length}/64 burst requests failed (${failed.slice(0, 3).map((f) => (f.reason as Error).message).join('; ')})`);
          const m = await scrape(ctx.server);
          ctx.note(`after restore: pool in use ${total(m, 'bike_db_pool_connections', 'state="in_use"')}, waiting ${total(m, 'bike_db_pool_waiting')}`);
        }
        await ctx.progress(20, 20_000, `after ${store} came back`);
      }),
  };
}
export const redisCut = storeCut('redis');
export const mysqlCut = storeCut('mysql');

export const sigtermRestart: Drill = {
  name: 'sigterm-restart',
  proves: 'SIGTERM under load then a new instance on the same port (rolling update): every request answered or refused SHUTTING_DOWN and retried by the SDK; none lost',
  run: (o) =>
    drill('sigterm-restart', o, async (ctx) => {
      await ctx.start();
      const port = ctx.server.port;
      await ctx.startLoad();
      await sleep(ctx.short ? 1500 : 4000);
      const lostBefore = errorsOf(ctx, 'CLOSED', 'TIMEOUT') - ctx.load.stats.closedUnserved;
      const unservedBefore = ctx.load.stats.closedUnserved;
      ctx.log('SIGTERM');
      const code = await ctx.server.stop('SIGTERM');
      ctx.log(`old instance exited with ${code}`);
      ctx.check(code === 0, `the drained instance exited with ${code} (want 0)`);
      const noticed = ctx.load.stats.notices;
      await ctx.start({ port });
      ctx.log('new instance ready');
      await ctx.progress(20, 20_000, 'after the restart');
      await sleep(ctx.short ? 1000 : 4000);
      // Lost: sent on a connection an instance had taken, and neither answered nor refused.
      const lost = errorsOf(ctx, 'CLOSED', 'TIMEOUT') - ctx.load.stats.closedUnserved - lostBefore;
      const unserved = ctx.load.stats.closedUnserved - unservedBefore;
      ctx.check(lost === 0, `${lost} requests lost (CLOSED/TIMEOUT on a connection an instance had accepted) across the rolling restart: ${[...(ctx.load.stats.samples.CLOSED ?? []), ...(ctx.load.stats.samples.TIMEOUT ?? [])].join(' | ')}`);
      ctx.check(noticed > 0, 'no client saw ServerNotice{SHUTTING_DOWN}');
      ctx.note(`${noticed} drain notices, ${ctx.load.stats.errors.CONNECT_FAILED ?? 0} connects refused while no instance listened (nothing sent), ${unserved} connections reset before any worker took them (nothing read), ${lost} lost`);
    }),
};

export const slowReaders: Drill = {
  name: 'slow-readers',
  proves: 'clients that pipeline big answers and never read are closed once unsent bytes pass maxWriteBufferBytes; worker memory stays bounded',
  run: (o) =>
    drill(
      'slow-readers',
      o,
      async (ctx) => {
        const bound = 1024 * 1024;
        await ctx.start({ env: { BIKE_MAX_WRITE_BUFFER_BYTES: String(bound) } });
        await ctx.startLoad({ clients: 4 });
        // A user with 100 records: each ListAccountRecords(limit 100) answer is ~3 KB.
        const { client } = await loggedIn(ctx.server.port);
        for (let i = 0; i < 100; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => client.recharge(100 + i + j, `slow-${i + j}`)));
        const token = client.token;
        client.close();
        const workers = workerPids(ctx.server.process.pid!);
        const rssBefore = new Map(workers.map((p) => [p, rssKb(p)]));
        const peak = new Map(rssBefore);
        const sampler = setInterval(() => workers.forEach((p) => peak.set(p, Math.max(peak.get(p) ?? 0, rssKb(p)))), 100);
        ctx.onCleanup(() => clearInterval(sampler));
        const closedBefore = total(await scrape(ctx.server), 'bike_connections_closed_total', 'reason="slow_reader"');
        const readers = ctx.short ? 2 : 6;
        // Far more than the server will ever answer before the bound: unbounded buffering would show.
        const perReader = ctx.short ? 10_000 : 20_000;
        const body = codec<object>('ListAccountRecords').encode({ token, limit: 100 });
        const sockets: net.Socket[] = [];
        for (let r = 0; r < readers; r++) {
          const socket = net.connect({ host: '127.0.0.1', port: ctx.server.port });
          await once(socket, 'connect');
          socket.pause(); // never read
          socket.on('error', () => undefined);
          const frames = Buffer.concat(Array.from({ length: perReader }, (_, i) => encodeFrame(MessageType.ListAccountRecords, i + 1, body)));
          socket.write(frames);
          sockets.push(socket);
        }
        ctx.log(`${readers} readers sent ${perReader} requests each (~${Math.round((perReader * 2.9) / 1024)} MiB of answers each), reading nothing`);
        const closedAll = await waitFor(async () => total(await scrape(ctx.server), 'bike_connections_closed_total', 'reason="slow_reader"') - closedBefore >= readers, 90_000, 500);
        const closed = total(await scrape(ctx.server), 'bike_connections_closed_total', 'reason="slow_reader"') - closedBefore;
        ctx.check(Boolean(closedAll), `${closed}/${readers} non-reading connections closed as slow_reader within 90 s`);
        // The client side sees the close too once it reads what had arrived.
        const ends = await Promise.all(
          sockets.map(async (s) => {
            s.on('data', () => undefined);
            s.resume();
            return waitFor(() => s.destroyed || s.readableEnded, 30_000);
          }),
        );
        ctx.check(ends.every(Boolean), `${ends.filter((e) => !e).length} slow-reader sockets still open on the client side`);
        for (const s of sockets) s.destroy();
        clearInterval(sampler);
        // Bounded: a base for GC slack plus, per reader, its write buffer and unread request bytes (8 MiB),
        // far below the ~3 KB x requests (30..60 MiB per reader) that buffering every answer would take.
        const allowKb = 64 * 1024 + readers * 8 * 1024;
        for (const p of workers) {
          const grew = (peak.get(p) ?? 0) - (rssBefore.get(p) ?? 0);
          ctx.note(`worker ${p}: RSS ${rssBefore.get(p)} KiB -> peak ${peak.get(p)} KiB (+${grew}, bound +${allowKb})`);
          ctx.check(grew <= allowKb, `worker ${p} RSS grew by ${grew} KiB with ${readers} slow readers (bound ${allowKb} KiB)`);
        }
        ctx.check(workerPids(ctx.server.process.pid!).join() === workers.join(), 'a worker died during the slow-reader drill');
        const ping = await pingFresh(ctx.server.port);
        ctx.note(`${closed} closed as slow_reader; a fresh ping took ${ping} ms`);
        await ctx.progress(10, 20_000, 'after the slow readers');
      },
      { otherUsers: true },
    ),
};

export const slowloris: Drill = {
  name: 'slowloris',
  proves: 'half frames (silent or trickled a byte at a time) and silent connections are closed after idleTimeoutMs; the service keeps answering',
  run: (o) =>
    drill('slowloris', o, async (ctx) => {
      const idleMs = 2000;
      await ctx.start({ env: { BIKE_IDLE_TIMEOUT_MS: String(idleMs) } });
      await ctx.startLoad({ clients: 4 });
      const n = ctx.short ? 30 : 200;
      const closedBefore = total(await scrape(ctx.server), 'bike_connections_closed_total', 'reason="idle"');
      const ping = encodeFrame(MessageType.Ping, 1, codec<object>('Ping').encode({ nonce: 1 }));
      const conns: { conn: RawConn; kind: string; openedAt: number; closedAfter: number }[] = [];
      const tricklers: NodeJS.Timeout[] = [];
      ctx.onCleanup(() => tricklers.forEach(clearInterval));
      for (let i = 0; i < n; i++) {
        const conn = await RawConn.open(ctx.server.port);
        const kind = ['half-header', 'half-body', 'trickle', 'silent'][i % 4];
        const big = Buffer.concat([ping.subarray(0, 8), Buffer.from([0, 0, 0, 200]), Buffer.alloc(50)]); // announces 200, sends 50
        if (kind === 'half-header') conn.write(ping.subarray(0, 6));
        else if (kind === 'half-body') conn.write(big);
        else if (kind === 'trickle') {
          let pos = 0;
          const t = setInterval(() => {
            if (pos < big.length && !conn.closed) conn.write(big.subarray(pos, ++pos));
          }, 300);
          tricklers.push(t);
        }
        conns.push({ conn, kind, openedAt: Date.now(), closedAfter: -1 });
      }
      for (const c of conns) void c.conn.waitClosed(60_000).then((closed) => (c.closedAfter = closed ? Date.now() - c.openedAt : -1));
      // While they hang on, the service answers.
      const pingMs = await pingFresh(ctx.server.port);
      ctx.note(`ping with ${n} slowloris connections open: ${pingMs} ms`);
      const allClosed = await waitFor(() => conns.every((c) => c.closedAfter >= 0), 8 * idleMs + 20_000, 200);
      for (const t of tricklers) clearInterval(t);
      const open = conns.filter((c) => c.closedAfter < 0);
      ctx.check(Boolean(allClosed), `${open.length} slowloris connections still open (${[...new Set(open.map((c) => c.kind))].join(', ')})`);
      const early = conns.filter((c) => c.closedAfter >= 0 && c.closedAfter < idleMs);
      ctx.check(early.length === 0, `${early.length} connections closed before idleTimeoutMs`);
      const answered = conns.filter((c) => c.conn.frames.length > 0);
      ctx.check(answered.length === 0, `${answered.length} slowloris connections got a frame (want a silent close)`);
      const closed = total(await scrape(ctx.server), 'bike_connections_closed_total', 'reason="idle"') - closedBefore;
      ctx.check(closed >= n, `bike_connections_closed_total{reason="idle"} grew by ${closed}, want >= ${n}`);
      const after = conns.map((c) => c.closedAfter).sort((a, b) => a - b);
      ctx.note(`${n} connections closed as idle ${after[0]}..${after[after.length - 1]} ms after opening (idleTimeoutMs ${idleMs})`);
      await ctx.progress(20, 20_000, 'with slowloris connections');
    }),
};

export const idleConnections: Drill = {
  name: 'idle-5000',
  proves: '5000 idle connections held open are all accepted and a ping is still answered promptly',
  run: (o) =>
    drill('idle-5000', o, async (ctx) => {
      const want = ctx.short ? 1000 : 5000;
      const limit = fdLimit();
      const n = Math.min(want, Math.max(0, limit - 500));
      if (n < want) ctx.note(`open-files limit ${limit}: holding ${n} connections instead of ${want}`);
      await ctx.start();
      await ctx.startLoad({ clients: 4 });
      const openBefore = total(await scrape(ctx.server), 'bike_connections_open');
      const conns: RawConn[] = [];
      ctx.onCleanup(() => conns.forEach((c) => c.destroy()));
      for (let i = 0; i < n; i += 250) {
        conns.push(...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, () => RawConn.open(ctx.server.port)))));
      }
      const counted = await waitFor(async () => total(await scrape(ctx.server), 'bike_connections_open') - openBefore >= n, 30_000, 250);
      const open = total(await scrape(ctx.server), 'bike_connections_open') - openBefore;
      ctx.check(Boolean(counted), `server counts ${open} new open connections, want ${n}`);
      const pingMs = await pingFresh(ctx.server.port);
      ctx.check(pingMs < 5000, `ping with ${n} idle connections took ${pingMs} ms`);
      await sleep(ctx.short ? 1000 : 5000);
      const refused = conns.filter((c) => c.frames.length > 0 || c.closed);
      ctx.check(refused.length === 0, `${refused.length} idle connections were refused or closed`);
      ctx.note(`${n} idle connections held (${open} counted open by the server); fresh ping ${pingMs} ms`);
      for (const c of conns) c.destroy();
      const drained = await waitFor(async () => total(await scrape(ctx.server), 'bike_connections_open') <= openBefore + 2, 30_000, 250);
      ctx.check(Boolean(drained), 'open connection count did not come back down after closing them');
      await ctx.progress(20, 20_000, 'with idle connections');
    }),
};

export const connectionLimit: Drill = {
  name: 'connection-limit',
  proves: 'past maxConnectionsPerWorker a new connection gets Error SERVICE_UNAVAILABLE (requestId 0, retry_after_ms) and is closed; a freed slot is usable again',
  run: (o) =>
    drill('connection-limit', o, async (ctx) => {
      const clients = 4;
      const limit = clients + 4;
      await ctx.start({ workers: 1, env: { BIKE_MAX_CONNECTIONS_PER_WORKER: String(limit) } });
      await ctx.startLoad({ clients });
      const accepted: RawConn[] = [];
      ctx.onCleanup(() => accepted.forEach((c) => c.destroy()));
      const ping = (id: number) => frameOf(MessageType.Ping, id, 'Ping', { nonce: id });
      let refused: { conn: RawConn; frame: Frame | null } | null = null;
      for (let i = 0; i < limit + 2 && !refused; i++) {
        const conn = await RawConn.open(ctx.server.port);
        conn.write(ping(1));
        const f = await conn.next(10_000);
        if (f && f.type === (MessageType.Ping | 0x8000)) accepted.push(conn);
        else refused = { conn, frame: f };
      }
      ctx.check(accepted.length === limit - clients, `${accepted.length} extra connections accepted, want ${limit - clients} (limit ${limit}, ${clients} load clients)`);
      if (!ctx.check(refused !== null, 'no connection was refused past the limit')) return;
      const f = refused!.frame;
      const err = f ? errorOf(f) : null;
      ctx.check(
        !!err && err.code === ErrorCode.SERVICE_UNAVAILABLE && f!.requestId === 0 && err.retryAfterMs > 0,
        `refusal frame: ${f ? `requestId ${f.requestId} ${err ? `${errorName(err.code)} retry_after_ms ${err.retryAfterMs}` : `type 0x${f.type.toString(16)}`}` : 'none'}`,
      );
      ctx.check(await refused!.conn.waitClosed(10_000), 'the refused connection was not closed after the Error');
      ctx.check(refused!.conn.frames.length === 0, 'the refused connection got more than the Error (our ping was answered?)');
      // The SDK reports it as SERVICE_UNAVAILABLE.
      const sdk = await BikeClient.connect({ host: '127.0.0.1', port: ctx.server.port, timeoutMs: 10_000 });
      const outcome = await sdk.ping(1).then(() => 'answered', (e: Error) => (e instanceof ServerError ? e.codeName : e.message));
      sdk.close();
      ctx.check(outcome === 'SERVICE_UNAVAILABLE', `SDK over the limit: ${outcome} (want SERVICE_UNAVAILABLE)`);
      // A freed slot is usable again.
      accepted.pop()!.destroy();
      const freed = await waitFor(async () => {
        const c = await RawConn.open(ctx.server.port);
        c.write(ping(2));
        const a = await c.next(5000);
        c.destroy();
        return a?.type === (MessageType.Ping | 0x8000);
      }, 10_000, 200);
      ctx.check(Boolean(freed), 'a freed slot was not usable again');
      const refusedMetric = total(await scrape(ctx.server), 'bike_connections_refused_total');
      ctx.note(`${accepted.length + 1} accepted up to the limit of ${limit}; bike_connections_refused_total ${refusedMetric}; SDK saw ${outcome}`);
      await ctx.progress(20, 20_000, 'at the connection limit');
    }),
};

export const fuzz: Drill = {
  name: 'fuzz',
  proves: 'random and mutated frames: every one answered with the right code or closed per the protocol, no worker crash, bounded memory, rejections counted in /metrics',
  run: (o) =>
    drill(
      'fuzz',
      o,
      async (ctx) => {
        await ctx.start();
        await ctx.startLoad({ clients: 2 });
        const { client } = await loggedIn(ctx.server.port);
        const token = client.token;
        client.close();
        const db = openDb(ctx.database);
        const bikeIds: number[] = [];
        try {
          for (let i = 0; i < 20; i++) bikeIds.push(await insertBike(db, HOME.lat + 0.001 * (i % 5), HOME.lng + 0.001 * Math.floor(i / 5), Date.now()));
        } finally {
          await db.close();
        }
        const frames = ctx.short ? 50_000 : 1_000_000;
        const report = await runFuzz({ server: ctx.server, frames, connections: 8, token, bikeIds, log: (l) => ctx.log(l) });
        for (const p of report.problems) ctx.fail(`fuzz (seed ${report.seed}): ${p}`);
        ctx.note(
          `fuzz seed ${report.seed}: ${report.frames} frames on ${report.connectionsOpened} connections, ${report.answers} answers, ${report.closedByFault} closed by framing errors, ` +
            `${report.rejectionsCounted} rejections counted = metric +${report.rejectionsMetric}; answers ${JSON.stringify(report.byAnswer)}; ` +
            `RSS ${report.workers.map((w) => `${w.pid}: ${w.rssBeforeKb}->${w.rssAfterKb} KiB`).join(', ')}`,
        );
      },
      { otherUsers: true },
    ),
};

export const DRILLS: Drill[] = [workerKill, primaryKill, redisCut, mysqlCut, sigtermRestart, slowReaders, slowloris, idleConnections, connectionLimit, fuzz];

/** The soft open-files limit of this process (the server processes inherit it). */
export function fdLimit(): number {
  try {
    const text = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : 1024;
  } catch {
    return 1024;
  }
}

export type { DrillOptions };
