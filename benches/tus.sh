#!/usr/bin/env bash
# tus uploads side by side in one run: one file through tuspy (the tus project's Python
# client) in 8 MiB chunks to `pipe serve` (release build, encryption at rest on, every
# acknowledged offset fsync'd), to the tus project's reference server @tus/server (npm,
# its FileStore) and to rustus 0.5.10 (file storage), each on loopback and on the same
# disk; then the peak memory of `pipe serve` while one large upload goes through.
#
#   benches/tus.sh                          # 1 GiB, 3 runs each; RSS during 4 GiB
#   PIPE_BENCH_TUS_MIB=128 PIPE_BENCH_TUS_RUNS=1 PIPE_BENCH_TUS_RSS_MIB=256 benches/tus.sh
#
# How to read it, per server:
#   seconds, MiB/s   wall time of the whole upload (creation + every PATCH), median of the
#                    runs; the servers take turns, so the disk's state is shared fairly, and
#                    each is followed by `sync` (only pipe fsyncs: the others' writes would
#                    otherwise be flushed during the next server's run). pipe is started
#                    afresh for each run, so its pipeline's work on the last upload does
#                    not run beside the next one
#   pipe/<other>     pipe's throughput over the other's (goal: >= 1.5 over the faster)
# and for pipe during the large upload:
#   peak RSS MiB     the highest VmRSS of the `pipe` process sampled every 100 ms (VmHWM
#                    too), and its RSS before the upload (goal: < 64 MiB, flat in size)
# Machine-readable lines: `RESULT server=… seconds=… mib_s=…`, `RATIO …`, `RSS …`.
#
# The uploaded bytes are random, so the pipeline's probe fails them at once after each
# upload (a `video_failed`): that costs nothing next to the upload and keeps the run about
# the intake. Everything is installed under ~/.cache/pipe/bench (outside the repository):
# @tus/server with npm, rustus with `cargo install`, tuspy with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mib=${PIPE_BENCH_TUS_MIB:-1024}
runs=${PIPE_BENCH_TUS_RUNS:-3}
rss_mib=${PIPE_BENCH_TUS_RSS_MIB:-4096}
chunk=$((8 << 20))
cache="$HOME/.cache/pipe/bench"
mkdir -p "${PIPE_BENCH_TUS_DIR:-$cache}"
work=$(mktemp -d "${PIPE_BENCH_TUS_DIR:-$cache}/tus-bench.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$cache"

echo "==> building pipe (release)" >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pipe/target}"
cargo build --quiet --release -p pipe-server --bin pipe
pipe_bin="$CARGO_TARGET_DIR/release/pipe"

if [ ! -d "$cache/node/node_modules/@tus/file-store" ]; then
  echo "==> installing @tus/server and @tus/file-store" >&2
  mkdir -p "$cache/node"
  (cd "$cache/node" && npm init -y >/dev/null &&
    npm install --no-audit --no-fund @tus/server@2.4.5 @tus/file-store@2.1.1 >/dev/null)
fi
if [ ! -x "$cache/rustus/bin/rustus" ]; then
  echo "==> installing rustus 0.5.10" >&2
  cargo install --quiet --locked rustus --version 0.5.10 --root "$cache/rustus"
fi
if [ ! -d "$cache/tuspy/tusclient" ]; then
  echo "==> installing tuspy 1.1.0" >&2
  pip3 install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
    --target "$cache/tuspy" tuspy==1.1.0
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}

start_pipe() { # data dir, port, max bytes
  PIPE_LISTEN="127.0.0.1:$2" PIPE_DATA_DIR="$1" PIPE_MAX_RECORDING_BYTES="$3" \
    PIPE_PUBLIC_URL="http://127.0.0.1:$2" RUST_LOG=warn \
    "$pipe_bin" serve >"$1.log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}

cat >"$work/tus-node.mjs" <<EOF
import { Server } from '$cache/node/node_modules/@tus/server/dist/index.js';
import { FileStore } from '$cache/node/node_modules/@tus/file-store/dist/index.js';
const [directory, port] = process.argv.slice(2);
new Server({ path: '/files', datastore: new FileStore({ directory }) })
  .listen({ host: '127.0.0.1', port: Number(port) });
EOF

file="$work/upload.bin"
echo "==> making $mib MiB of random bytes" >&2
head -c "$((mib << 20))" /dev/urandom >"$file"

declare -A endpoint
p=$(port); mkdir -p "$work/tus-node"
node "$work/tus-node.mjs" "$work/tus-node" "$p" >"$work/tus-node.log" 2>&1 &
pids+=($!); wait_port "$p"
endpoint[tus-node]="http://127.0.0.1:$p/files/"
p=$(port); mkdir -p "$work/rustus"
"$cache/rustus/bin/rustus" --host 127.0.0.1 --port "$p" --data-dir "$work/rustus" \
  --info-dir "$work/rustus" \
  --max-body-size $((chunk + 1024)) >"$work/rustus.log" 2>&1 &
pids+=($!); wait_port "$p"
endpoint[rustus]="http://127.0.0.1:$p/files/"

upload() { # endpoint, file; prints seconds
  local start end
  start=$(date +%s.%N)
  PYTHONPATH="$cache/tuspy" python3 "$root/pipe-server/tests/tus/tuspy-upload.py" \
    "$1" "$2" "$chunk" '{"filetype": "application/octet-stream"}' >"$work/client.out"
  end=$(date +%s.%N)
  grep -q '"done": true' "$work/client.out" || { cat "$work/client.out" >&2; return 1; }
  echo "$end - $start" | bc -l
}

servers=(pipe tus-node rustus)
declare -A times
for run in $(seq "$runs"); do
  # Each run starts with another server, so none always has the coldest disk.
  order=("${servers[@]:$(((run - 1) % 3))}" "${servers[@]:0:$(((run - 1) % 3))}")
  for server in "${order[@]}"; do
    if [ "$server" = pipe ]; then
      # A fresh server each run: the pipeline's work on the last upload (it fails the
      # random bytes and keeps the original) must not run beside this one.
      p=$(port); rm -rf "$work/pipe"; mkdir -p "$work/pipe"
      start_pipe "$work/pipe/data" "$p" $(((mib + 1) << 20))
      endpoint[pipe]="http://127.0.0.1:$p/v1/uploads/"
    fi
    seconds=$(upload "${endpoint[$server]}" "$file")
    if [ "$server" = pipe ]; then
      kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
    fi
    times[$server]+="$seconds "
    echo "run $run $server ${seconds}s" >&2
    sync
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A rate
for server in "${servers[@]}"; do
  seconds=$(echo "${times[$server]}" | median)
  rate[$server]=$(echo "$mib / $seconds" | bc -l)
  printf 'RESULT server=%s seconds=%.2f mib_s=%.1f\n' "$server" "$seconds" "${rate[$server]}"
done
for other in tus-node rustus; do
  printf 'RATIO pipe/%s throughput=%.2f\n' "$other" "$(echo "${rate[pipe]} / ${rate[$other]}" | bc -l)"
done

# Memory of pipe during one large upload (a fresh server of its own).
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
rm -f "$file"
echo "==> pipe's memory while $rss_mib MiB are uploaded" >&2
head -c "$((rss_mib << 20))" /dev/urandom >"$file"
p=$(port); mkdir -p "$work/rss"; start_pipe "$work/rss/data" "$p" $(((rss_mib + 1) << 20))
pipe_pid=${pids[-1]}
rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pipe_pid/status"; }
before=$(rss)
( peak=0
  while kill -0 "$pipe_pid" 2>/dev/null; do
    now=$(rss); [ "$now" -gt "$peak" ] && peak=$now && echo "$peak" >"$work/peak"
    sleep 0.1
  done ) &
sampler=$!
seconds=$(upload "http://127.0.0.1:$p/v1/uploads/" "$file")
sleep 0.3
kill "$sampler" 2>/dev/null || true
hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$pipe_pid/status")
printf 'RSS server=pipe mib=%d seconds=%.1f before_mib=%d peak_rss_mib=%d vmhwm_mib=%d\n' \
  "$rss_mib" "$seconds" "$before" "$(cat "$work/peak")" "$hwm"
