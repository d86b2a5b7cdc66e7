// Process and socket facts read from /proc (Linux): a primary's workers, a
// process's resident memory, and whether anything listens on a TCP port.
import { readFileSync, readdirSync } from 'node:fs';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it is truthy or `timeoutMs` passes; returns its last value. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value || Date.now() > deadline) return value;
    await sleep(everyMs);
  }
}

function stat(pid: number): { state: string; ppid: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The cluster workers of a primary: its live (not zombie) direct children that
 * run the primary's own program. Helpers such as the esbuild service that tsx
 * starts under `node --import tsx` are children too, and are left out.
 */
export function workerPids(primary: number): number[] {
  const program = comm(primary);
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s && s.ppid === primary && s.state !== 'Z' && comm(Number(name)) === program) pids.push(Number(name));
  }
  return pids.sort((a, b) => a - b);
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const s = stat(pid);
  return s !== null && s.state !== 'Z';
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status), 0 if the process is gone. */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Whether any socket of this network namespace is in LISTEN state on `port` (IPv4 or IPv6). */
export function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[1].endsWith(`:${hex}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}
