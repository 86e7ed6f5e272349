#!/usr/bin/env bash
# Where one echo server's CPU goes, per round trip (or per MiB in bulk mode):
# runs the server pinned to CPU 1 and bench/loadgen.c pinned to CPU 0, and
# records the server with `perf record` during the generator's measured
# period only (from its START line), then prints the samples by thread and
# binary, and the top symbols, as nanoseconds per round trip.
#
# Usage:
#   bench/profile.sh [--mode pingpong|bulk] [--size BYTES] [--conns N]
#                    [--seconds S] -- SERVER COMMAND...
# The server command gets `--host 127.0.0.1 --port 0` appended and must print
# "READY <port>" (as every server in bench/servers/ does). Examples:
#   bench/profile.sh --size 65536 --conns 10 -- \
#     deno run -A --v8-flags=--perf-basic-prof bench/servers/aionet_protocol.ts
#   bench/profile.sh --conns 10000 -- node bench/servers/node_echo.mjs
# (--perf-basic-prof names JavaScript frames; it writes /tmp/perf-<pid>.map.)
#
# Needs perf, taskset and gcc; loopback only. The figures in bench/RESULTS.md
# ("Where the remaining gaps come from") were taken this way.
set -euo pipefail

mode=pingpong size=1024 conns=100 seconds=8
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown flag $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "no server command (see the header of $0)" >&2; exit 2; }
[ "$seconds" -ge 4 ] || { echo "--seconds must be at least 4" >&2; exit 2; }
for tool in perf taskset gcc; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid="" loadgen_pid=""
cleanup() {
  [ -n "$loadgen_pid" ] && kill "$loadgen_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

gcc -O2 -Wall -o "$work/loadgen" "$root/bench/loadgen.c"

taskset -c 1 "$@" --host 127.0.0.1 --port 0 >"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^READY' "$work/server.out" && break
  sleep 0.1
done
port=$(awk '/^READY/ { print $2; exit }' "$work/server.out")
[ -n "$port" ] || { echo "the server did not print READY:" >&2; cat "$work/server.out" >&2; exit 1; }

taskset -c 0 "$work/loadgen" --port "$port" --mode "$mode" --conns "$conns" \
  --size "$size" --seconds "$seconds" >"$work/loadgen.out" 2>&1 &
loadgen_pid=$!
# Connecting 10,000 clients takes a while: wait up to 60 s for START.
for _ in $(seq 600); do
  grep -q '^START' "$work/loadgen.out" && break
  sleep 0.1
done
grep -q '^START' "$work/loadgen.out" || { echo "the generator never started:" >&2; cat "$work/loadgen.out" >&2; exit 1; }
recorded=$((seconds - 2))
perf record -F 2000 -g -p "$server_pid" -o "$work/perf.data" -- sleep "$recorded" \
  >/dev/null 2>&1
wait "$loadgen_pid"
loadgen_pid=""
result=$(grep '^{' "$work/loadgen.out" | tail -n 1)
echo "$result"

# Units of work in the recorded window: round trips, or MiB in bulk mode.
elapsed=$(sed 's/.*"elapsed":\([0-9.]*\).*/\1/' <<<"$result")
if [ "$mode" = bulk ]; then
  total=$(sed 's/.*"bytes":\([0-9]*\).*/\1/' <<<"$result")
  unit="MiB" total=$(awk -v b="$total" 'BEGIN { print b / 1048576 }')
else
  total=$(sed 's/.*"roundtrips":\([0-9]*\).*/\1/' <<<"$result")
  unit="round trip"
fi
work_units=$(awk -v t="$total" -v e="$elapsed" -v r="$recorded" 'BEGIN { print t * r / e }')
# At 2000 samples/s each sample stands for 500,000 ns of CPU.
per_unit() {
  awk -v w="$work_units" -v u="$unit" \
    '/%/ { n = $2; $1 = ""; $2 = ""; printf "%10.0f ns/%s %s\n", n * 500000 / w, u, $0 }'
}
echo "-- by thread and binary"
perf report -i "$work/perf.data" --no-children --sort comm,dso --stdio -g none -n \
  2>/dev/null | grep '%' | head -n 10 | per_unit
echo "-- top symbols"
perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio -g none -n \
  2>/dev/null | grep '%' | head -n 20 | per_unit
