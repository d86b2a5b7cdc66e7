// The typed SDK of docs/protocol.md: one method per message over one
// multiplexed connection. When the server drains (ServerNotice, or an answer
// SHUTTING_DOWN, which guarantees no effect) the client lets the old
// connection finish, opens a new one, and sends the refused request again.
import { EventEmitter } from 'node:events';
import { codec, type Uint64 } from '../protocol/codec.js';
import { MessageType, REQUESTS, type RequestName } from '../protocol/types.js';
import { ErrorCode } from '../protocol/messages.js';
import type * as m from '../protocol/messages.js';
import { ClientConnection, type ConnectOptions } from './connection.js';
import { ClientError, ServerError } from './errors.js';

export { ClientError, ServerError };
export { ErrorCode } from '../protocol/messages.js';

export interface ClientOptions extends ConnectOptions {
  /** Per-request timeout; 0 = none. Default 10000. */
  timeoutMs?: number;
  /** How often a SHUTTING_DOWN answer is retried on a new connection. Default 5. */
  drainRetries?: number;
  /** Session token to start with (e.g. kept from an earlier login). */
  token?: string;
}

type Msg<T> = Partial<T>;

const codecs = new Map(REQUESTS.map((r) => [r.request, { req: codec<unknown>(r.request), res: codec<unknown>(r.reply), id: r.id }]));

export class BikeClient extends EventEmitter {
  /** The session token, set by login() and used by every authenticated call. */
  token: string;
  private conn: ClientConnection;
  private reconnecting: Promise<ClientConnection> | null = null;
  private closing = false;

  private constructor(
    conn: ClientConnection,
    private readonly options: ClientOptions,
  ) {
    super();
    this.token = options.token ?? '';
    this.conn = conn;
    this.watch(conn);
  }

  static async connect(options: ClientOptions): Promise<BikeClient> {
    return new BikeClient(await ClientConnection.open(options), options);
  }

  /** Sends one request of the named type and resolves with its decoded answer. */
  async request<Res>(name: RequestName, message: object, timeoutMs = this.options.timeoutMs ?? 10000): Promise<Res> {
    const c = codecs.get(name)!;
    const body = c.req.encode(message);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.current();
      try {
        return c.res.decode(await conn.call(c.id, body, timeoutMs)) as Res;
      } catch (err) {
        const refused = err instanceof ServerError && err.code === ErrorCode.SHUTTING_DOWN;
        if (!refused || attempt >= (this.options.drainRetries ?? 5) || this.closing) throw err;
        conn.draining = true; // the server said so; never send here again
      }
    }
  }

  /** `nonce` is echoed bit for bit: a number, or a Long for values beyond 2^53. */
  ping(nonce: Uint64 = 0): Promise<m.Pong> {
    return this.request('Ping', { nonce });
  }
  requestCode(phone: string): Promise<m.RequestCodeReply> {
    return this.request('RequestCode', { phone });
  }
  async login(phone: string, code: string): Promise<m.LoginReply> {
    const reply = await this.request<m.LoginReply>('Login', { phone, code });
    this.token = reply.token;
    return reply;
  }
  async logout(): Promise<void> {
    await this.request('Logout', { token: this.token });
  }
  async balance(): Promise<number> {
    return (await this.request<m.Balance>('GetBalance', { token: this.token })).balanceCents;
  }
  recharge(amountCents: number, idempotencyKey: string): Promise<m.RechargeReply> {
    return this.request('Recharge', { token: this.token, amountCents, idempotencyKey });
  }
  accountRecords(cursor = '', limit = 0): Promise<m.AccountRecordPage> {
    return this.request('ListAccountRecords', { token: this.token, cursor, limit });
  }
  nearbyBikes(q: Msg<m.FindNearbyBikes>): Promise<m.NearbyBikes> {
    return this.request('FindNearbyBikes', q);
  }
  unlock(bikeId: number): Promise<m.RideStarted> {
    return this.request('UnlockBike', { token: this.token, bikeId });
  }
  endRide(rideId: number, lat: number, lng: number): Promise<m.RideEnded> {
    return this.request('EndRide', { token: this.token, rideId, lat, lng });
  }
  rides(cursor = '', limit = 0): Promise<m.RidePage> {
    return this.request('ListRides', { token: this.token, cursor, limit });
  }

  /** The connection in use (for tests that need raw access). */
  get connection(): ClientConnection {
    return this.conn;
  }

  close(): void {
    this.closing = true;
    this.conn.close();
  }

  private watch(conn: ClientConnection): void {
    conn.on('notice', (notice: m.ServerNotice) => this.emit('notice', notice));
    conn.on('close', (err: Error) => {
      if (conn === this.conn) this.emit('disconnect', err);
    });
  }

  private async current(): Promise<ClientConnection> {
    if (!this.conn.draining && !this.conn.closed) return this.conn;
    if (this.closing) throw new ClientError('CLOSED', 'client closed');
    this.reconnecting ??= ClientConnection.open(this.options).then(
      (conn) => {
        // The old connection is left to finish what it has in flight; the
        // draining server closes it once nothing is owed.
        this.conn = conn;
        this.watch(conn);
        this.reconnecting = null;
        return conn;
      },
      (err) => {
        this.reconnecting = null;
        throw err;
      },
    );
    return this.reconnecting;
  }
}

/** Type id of a request name (for tests that build frames by hand). */
export const typeId = (name: keyof typeof MessageType): number => MessageType[name];
