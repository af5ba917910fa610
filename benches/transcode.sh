#!/usr/bin/env bash
# Times pipe-transcode against the ffmpeg CLI on the same input with the same settings.
#
#   benches/transcode.sh            # 3 runs each, prints medians and the ratio ours/ffmpeg
#   RUNS=5 benches/transcode.sh
#   PIPE_BIN=/path/to/transcode_a_file benches/transcode.sh   # skip the cargo build
#
# Input: 30 s of 1280x720 30 fps VP8 + 48 kHz Opus (testsrc2 + sine), made once.
# Both sides: libx264 preset veryfast crf 23 yuv420p, AAC 128 kb/s, +faststart, and FFmpeg's
# automatic thread count for decoder and encoder (`threads=auto`, the CLI's default, which
# pipe-transcode sets explicitly), so `-threads` is the same on both sides.
set -euo pipefail

RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$(mktemp -d)}
INPUT="$WORK/input.webm"

if [[ ! -s "$INPUT" ]]; then
  echo "making $INPUT ..." >&2
  ffmpeg -v error -y \
    -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 30 -c:v libvpx -b:v 2M -deadline realtime -cpu-used 8 -c:a libopus -b:a 96k "$INPUT"
fi

if [[ -z "${PIPE_BIN:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p pipe-examples --example transcode_a_file >&2)
  PIPE_BIN="$ROOT/target/release/examples/transcode_a_file"
fi

ours() {
  "$PIPE_BIN" "$INPUT" "$WORK/ours.mp4" "$WORK/ours.jpg" >/dev/null
}

theirs() {
  ffmpeg -v error -y -threads 0 -i "$INPUT" \
    -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -threads 0 \
    -c:a aac -b:a 128k -movflags +faststart "$WORK/theirs.mp4"
}

export PIPE_BIN INPUT WORK
export -f ours theirs

# "wall cpu" seconds of one run of "$1": elapsed, and user + system time of all threads.
# CPU time is the steadier measure on a machine others are using too.
time_one() {
  local log
  log=$(mktemp)
  /usr/bin/time -f '%e %U %S' -o "$log" bash -c "$1"
  awk '{ printf "%s %s\n", $1, $2 + $3 }' "$log"
  rm -f "$log"
}

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -a our_wall our_cpu their_wall their_cpu
for ((i = 1; i <= RUNS; i++)); do
  # Alternate, so that neither side always runs on a warmer machine.
  read -r wall cpu < <(time_one theirs)
  their_wall+=("$wall"); their_cpu+=("$cpu")
  read -r wall cpu < <(time_one ours)
  our_wall+=("$wall"); our_cpu+=("$cpu")
  echo "run $i: pipe-transcode ${our_wall[-1]} s (cpu ${our_cpu[-1]} s), ffmpeg ${their_wall[-1]} s (cpu ${their_cpu[-1]} s)" >&2
done

our_median=$(printf '%s\n' "${our_wall[@]}" | median)
their_median=$(printf '%s\n' "${their_wall[@]}" | median)
ratio=$(echo "$our_median / $their_median" | bc -l)
our_cpu_median=$(printf '%s\n' "${our_cpu[@]}" | median)
their_cpu_median=$(printf '%s\n' "${their_cpu[@]}" | median)
cpu_ratio=$(echo "$our_cpu_median / $their_cpu_median" | bc -l)

printf 'input: 30 s 1280x720 30 fps VP8/Opus WebM, %s runs each, %s cores\n' "$RUNS" "$(nproc)"
printf 'pipe-transcode median: %.2f s wall, %.2f s cpu\n' "$our_median" "$our_cpu_median"
printf 'ffmpeg CLI median:     %.2f s wall, %.2f s cpu\n' "$their_median" "$their_cpu_median"
printf 'ratio ours/ffmpeg:     %.3f wall, %.3f cpu (goal <= 1.05)\n' "$ratio" "$cpu_ratio"
for f in ours theirs; do
  printf '%-6s %s bytes, %s s\n' "$f" "$(stat -c %s "$WORK/$f.mp4")" \
    "$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$WORK/$f.mp4")"
done
