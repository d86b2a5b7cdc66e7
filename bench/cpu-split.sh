#!/usr/bin/env bash
# Where the machine's CPU goes while a benchmark runs: CPU % (of one core) of
# each bikeshare process, the load generator, redis-server and mariadbd over a
# window, from utime+stime in /proc/<pid>/stat, plus the machine's idle and
# softirq share (loopback TCP is processed in softirq and billed to no process).
#
#   bench/cpu-split.sh [SECONDS]     # start it a few seconds into a bench run
set -euo pipefail
window=${1:-5}
hz=$(getconf CLK_TCK)
pids() { pgrep -f 'main.js serve|main.ts serve|main.js bench|main.ts bench|redis-server|mariadbd' || true; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
name() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-70; }
declare -A before
for p in $(pids); do before[$p]=$(ticks "$p"); done
read -r _ u1 n1 s1 i1 w1 q1 sq1 _ < /proc/stat
sleep "$window"
read -r _ u2 n2 s2 i2 w2 q2 sq2 _ < /proc/stat
total=0
for p in "${!before[@]}"; do
  [ -e "/proc/$p" ] || continue
  pct=$(( ( $(ticks "$p") - before[$p] ) * 100 * 100 / (hz * window) ))
  total=$(( total + pct ))
  printf '%4d.%02d%%  %-7s %s\n' $((pct / 100)) $((pct % 100)) "$p" "$(name "$p")"
done | sort -rn
all=$(( (u2 + n2 + s2 + i2 + w2 + q2 + sq2) - (u1 + n1 + s1 + i1 + w1 + q1 + sq1) ))
cores=$(nproc)
printf 'machine: idle %d%%, softirq %d%% (of %d%% = %d cores)\n' $(( (i2 - i1) * 100 * cores / all )) $(( (sq2 - sq1) * 100 * cores / all )) $((cores * 100)) "$cores"
