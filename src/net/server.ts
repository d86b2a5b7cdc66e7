// The protocol listener of one worker: accepts sockets (plain TCP or TLS),
// wraps each in a Connection, enforces the connection limit, runs the idle
// sweep, and drains: stop accepting, notice to everyone, close when idle.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { Connection, type ConnectionLimits, type FrameHandler } from './connection.js';
import { ConnectionRegistry } from './registry.js';

export interface ServerOptions extends ConnectionLimits {
  host: string;
  port: number;
  maxConnectionsPerWorker: number;
  idleTimeoutMs: number;
  tlsCertFile: string;
  tlsKeyFile: string;
}

export interface Pushes {
  /** Sent to a connection refused at the limit. */
  refusedFrame(): Buffer;
  /** Pushed to every connection when the drain begins. */
  drainNotice(): Buffer;
}

/** How long after the notice a draining connection may still send (its frames get SHUTTING_DOWN). */
const DRAIN_GRACE_MS = 250;

export class ProtocolServer {
  readonly connections: ConnectionRegistry;
  private readonly server: net.Server;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: ServerOptions,
    private readonly handler: FrameHandler & Pushes,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.connections = new ConnectionRegistry(() => metrics.repliesDropped.inc());
    const onSocket = (socket: net.Socket) => this.accept(socket);
    this.server = options.tlsCertFile
      ? tls.createServer({ cert: readFileSync(options.tlsCertFile), key: readFileSync(options.tlsKeyFile) }, onSocket)
      : net.createServer({ noDelay: true }, onSocket);
    this.server.on('error', (err) => log.error({ err }, 'protocol server error'));
    if (options.tlsCertFile) this.server.on('tlsClientError', (err) => log.debug({ err }, 'tls handshake failed'));
  }

  async listen(): Promise<number> {
    this.server.listen(this.options.port, this.options.host);
    await once(this.server, 'listening');
    const every = Math.max(50, Math.min(1000, Math.floor(this.options.idleTimeoutMs / 4)));
    this.sweepTimer = setInterval(() => this.connections.sweep(Date.now(), this.options.idleTimeoutMs), every);
    this.sweepTimer.unref();
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops accepting, tells every client, answers what is in flight, closes each connection once idle. */
  async drain(): Promise<void> {
    this.server.close();
    const notice = this.handler.drainNotice();
    for (const conn of this.connections.all()) conn.startDrain(notice);
    await new Promise((r) => setTimeout(r, DRAIN_GRACE_MS));
    for (const conn of this.connections.all()) conn.endWhenIdle('drained');
    while (this.connections.size > 0) await new Promise((r) => setTimeout(r, 20));
    this.stopSweep();
  }

  /** Closes every connection now. */
  destroyAll(): void {
    this.server.close();
    for (const conn of this.connections.all()) conn.destroy('forced');
    this.stopSweep();
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.options.maxConnectionsPerWorker) {
      this.metrics.connectionsRefused.inc();
      socket.on('error', () => socket.destroy());
      socket.end(this.handler.refusedFrame());
      return;
    }
    const conn = new Connection(this.connections.newId(), socket, this.options, this.handler, (c) => {
      this.connections.remove(c);
      this.metrics.connectionsOpen.dec();
      this.metrics.connectionsClosed.inc({ reason: c.closeReason ?? 'client_closed' });
      if (this.log.isLevelEnabled('debug')) this.log.debug({ conn: c.id, reason: c.closeReason }, 'connection closed');
    });
    this.connections.add(conn);
    this.metrics.connectionsOpen.inc();
    this.metrics.connectionsTotal.inc();
    if (this.log.isLevelEnabled('debug')) this.log.debug({ conn: conn.id, peer: conn.remoteAddress }, 'connection opened');
  }
}
