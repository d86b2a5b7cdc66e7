// Logged-in SDK clients for tests (the server runs with the echo SMS sender).
import { randomInt } from 'node:crypto';
import { BikeClient, type ClientOptions } from '../../src/client/client.js';

let counter = 0;
/** A phone number no other test in this run uses. */
export function uniquePhone(): string {
  counter = (counter + 1) % 1000;
  return `+1${String(randomInt(200, 999))}${String(randomInt(0, 10_000)).padStart(4, '0')}${String(counter).padStart(3, '0')}`;
}

export async function connect(port: number, extra: Partial<ClientOptions> = {}): Promise<BikeClient> {
  return BikeClient.connect({ host: '127.0.0.1', port, timeoutMs: 15000, ...extra });
}

/** Connects, asks for a code and logs in as a new phone. */
export async function loggedIn(port: number, phone = uniquePhone()): Promise<{ client: BikeClient; phone: string; userId: number }> {
  const client = await connect(port);
  const sent = await client.requestCode(phone);
  const reply = await client.login(phone, sent.debugCode);
  return { client, phone, userId: reply.userId };
}
