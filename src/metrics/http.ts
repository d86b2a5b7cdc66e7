// The primary's HTTP endpoints: /metrics (cluster aggregate), /healthz
// (the process is alive), /readyz (200 only while accepting work).
import http from 'node:http';
import { once } from 'node:events';

export interface HealthSource {
  metrics(): Promise<string>;
  alive(): boolean;
  /** null when ready, else the reason */
  notReady(): string | null;
}

export async function serveHttp(host: string, port: number, source: HealthSource): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    if (path === '/healthz') return source.alive() ? send(200, 'ok\n') : send(503, 'no live worker\n');
    if (path === '/readyz') {
      const why = source.notReady();
      return why === null ? send(200, 'ready\n') : send(503, `not ready: ${why}\n`);
    }
    if (path === '/metrics') {
      source.metrics().then(
        (text) => send(200, text, 'text/plain; version=0.0.4; charset=utf-8'),
        (err: Error) => send(500, `metrics failed: ${err.message}\n`),
      );
      return;
    }
    send(404, 'not found: try /metrics, /healthz or /readyz\n');
  });
  server.keepAliveTimeout = 5000;
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}
