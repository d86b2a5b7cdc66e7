// The ceiling of the protocol layer: a bare framed echo server. Same 12-byte
// framing (src/protocol/framer.ts), same node:cluster layout with the same
// worker count as the real server, and nothing else: every frame is answered
// at once with type | 0x8000, the same requestId and the same body. Driven
// by the load generator's ping scenario, it tells what Node, the kernel and
// the generator can do on this box, so the real server's Ping can be
// compared with it.
//
//   node --import tsx bench/echo-server.ts --port 7100 --workers 2 [--host 127.0.0.1]
//
// Prints "echo listening on HOST:PORT (N workers)" once every worker listens;
// SIGTERM or SIGINT stops it.
import cluster from 'node:cluster';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Framer } from '../src/protocol/framer.js';
import { encodeFrame, REPLY_BIT } from '../src/protocol/header.js';

const { values: v } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '7100' },
    workers: { type: 'string', default: String(availableParallelism()) },
  },
});
const host = v.host!;
const port = Number(v.port);
const workers = Number(v.workers);

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork();
    w.on('message', (msg: unknown) => {
      if (msg === 'listening' && ++listening === workers) console.log(`echo listening on ${host}:${port} (${workers} workers)`);
    });
  }
  cluster.on('exit', (_w, code, signal) => {
    if (!stopping) {
      console.error(`echo worker died (${code ?? signal}); stopping`);
      stop(1);
    }
  });
  let stopping = false;
  const stop = (code: number) => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    setTimeout(() => process.exit(code), 200).unref();
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
} else {
  process.on('SIGINT', () => undefined); // the primary decides
  const server = net.createServer({ noDelay: true }, (socket) => {
    const framer = new Framer(64 * 1024);
    socket.on('data', (chunk: Buffer) => {
      // The answers to one chunk leave in one write.
      socket.cork();
      const fault = framer.push(chunk, (type, requestId, body) => {
        socket.write(encodeFrame(type | REPLY_BIT, requestId, body));
        return true;
      });
      socket.uncork();
      if (fault) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(port, host, () => process.send?.('listening'));
}
