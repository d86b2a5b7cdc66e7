// `bikeshare call <message> [--flags]`: one request, its answer printed as
// JSON. The token from `login` is kept in a file (default .bikeshare-token)
// so a person can walk through a ride by hand.
import { parseArgs } from 'node:util';
import Long from 'long';
import { existsSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { BikeClient, ServerError } from '../client/client.js';
import { clientOptions, connectFlags } from './connect.js';

const HELP = `usage: bikeshare call <message> [--flags] [--host H --port P --tls --ca FILE --token-file F]

  ping                                   [--nonce N]
  request-code --phone P
  login        --phone P --code C        (keeps the token in the token file)
  logout
  balance
  recharge     --amount CENTS --key IDEMPOTENCY_KEY
  records      [--cursor C] [--limit N]
  nearby       --lat LAT --lng LNG --radius-m R [--limit N]
  unlock       --bike ID
  end-ride     --ride ID --lat LAT --lng LNG
  rides        [--cursor C] [--limit N]`;

const UINT64_MAX = (1n << 64n) - 1n;

/** A decimal uint64 as a Long (Ping's nonce is echoed bit for bit); null when the text is not one. */
function uint64(text: string): Long | null {
  if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) > UINT64_MAX) return null;
  return Long.fromString(text, true);
}

export async function callCommand(args: string[]): Promise<number> {
  const [message, ...rest] = args;
  if (!message || message === '--help') {
    console.log(HELP);
    return message ? 0 : 2;
  }
  const { values: v } = parseArgs({
    args: rest,
    options: {
      ...connectFlags,
      'token-file': { type: 'string', default: '.bikeshare-token' },
      nonce: { type: 'string' }, phone: { type: 'string' }, code: { type: 'string' }, amount: { type: 'string' }, key: { type: 'string' },
      cursor: { type: 'string' }, limit: { type: 'string' }, lat: { type: 'string' }, lng: { type: 'string' }, 'radius-m': { type: 'string' },
      bike: { type: 'string' }, ride: { type: 'string' },
    },
  });
  const nonce = uint64(v.nonce ?? '0');
  if (!nonce) {
    console.error(`--nonce: must be a decimal integer 0..${UINT64_MAX}`);
    return 2;
  }
  const tokenFile = v['token-file']!;
  const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  const client = await BikeClient.connect({ ...clientOptions(v), token });
  const n = (x: string | undefined) => Number(x ?? 0);
  try {
    let answer: unknown;
    switch (message) {
      case 'ping': answer = await client.ping(nonce); break;
      case 'request-code': answer = await client.requestCode(v.phone ?? ''); break;
      case 'login':
        answer = await client.login(v.phone ?? '', v.code ?? '');
        writeFileSync(tokenFile, client.token + '\n', { mode: 0o600 });
        break;
      case 'logout':
        await client.logout();
        if (existsSync(tokenFile)) unlinkSync(tokenFile);
        answer = {};
        break;
      case 'balance': answer = { balanceCents: await client.balance() }; break;
      case 'recharge': answer = await client.recharge(n(v.amount), v.key ?? ''); break;
      case 'records': answer = await client.accountRecords(v.cursor ?? '', n(v.limit)); break;
      case 'nearby': answer = await client.nearbyBikes({ lat: n(v.lat), lng: n(v.lng), radiusM: n(v['radius-m']), limit: n(v.limit) }); break;
      case 'unlock': answer = await client.unlock(n(v.bike)); break;
      case 'end-ride': answer = await client.endRide(n(v.ride), n(v.lat), n(v.lng)); break;
      case 'rides': answer = await client.rides(v.cursor ?? '', n(v.limit)); break;
      default:
        console.error(`unknown message "${message}"\n\n${HELP}`);
        return 2;
    }
    // A nonce beyond 2^53 comes back as a Long: print it as its decimal digits.
    console.log(JSON.stringify(answer, (_key, value: unknown) => (Long.isLong(value) ? value.toString() : value), 2));
    return 0;
  } catch (err) {
    if (err instanceof ServerError) {
      console.error(`error ${err.codeName}: ${err.message}${err.retryAfterMs ? ` (retry after ${err.retryAfterMs} ms)` : ''}`);
      return 1;
    }
    throw err;
  } finally {
    client.close();
  }
}
