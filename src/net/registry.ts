// The live connections of one worker, by id. Answers find their connection
// here when they are ready: one that has gone is dropped and counted, never
// written and never thrown. The idle sweep also lives here (one timer for all
// connections instead of one per connection).
import type { Connection } from './connection.js';

export class ConnectionRegistry {
  private readonly live = new Map<number, Connection>();
  private nextId = 1;

  constructor(private readonly onDropped: () => void) {}

  get size(): number {
    return this.live.size;
  }

  newId(): number {
    return this.nextId++;
  }

  add(conn: Connection): void {
    this.live.set(conn.id, conn);
  }

  remove(conn: Connection): void {
    this.live.delete(conn.id);
  }

  get(id: number): Connection | undefined {
    return this.live.get(id);
  }

  /** Delivers an answer by connection id. Returns false when it was dropped. */
  answer(id: number, frame: Buffer): boolean {
    const conn = this.live.get(id);
    if (!conn || conn.closed) {
      this.onDropped();
      return false;
    }
    conn.answer(frame);
    return true;
  }

  all(): IterableIterator<Connection> {
    return this.live.values();
  }

  /**
   * Closes, silently, connections whose partial frame is older than
   * `idleMs`, that neither sent nor awaited anything for `idleMs`, or that
   * ignored our FIN for `idleMs`.
   */
  sweep(now: number, idleMs: number): number {
    let closed = 0;
    for (const conn of this.live.values()) {
      const stalePartial = conn.partialSince > 0 && now - conn.partialSince > idleMs;
      const silent = conn.inflight === 0 && !conn.hasPartialFrame && now - conn.lastActivity > idleMs;
      const lingering = conn.endedAt > 0 && now - conn.endedAt > idleMs;
      if (stalePartial || silent || lingering) {
        conn.destroy('idle');
        closed++;
      }
    }
    return closed;
  }
}
