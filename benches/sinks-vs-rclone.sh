#!/usr/bin/env bash
# Copies one large file with Pipe's storage sinks (S3, SFTP) and with rclone into the same
# real servers, and compares time, CPU and peak memory.
#
#   benches/sinks-vs-rclone.sh                                   # 1 GiB, 3 runs, S3 and SFTP
#   PIPE_BENCH_COPY_MIB=64 PIPE_BENCH_COPY_RUNS=1 benches/sinks-vs-rclone.sh   # smoke test
#   PIPE_BENCH_COPY_MIB=4096 PIPE_BENCH_COPY_RUNS=1 PIPE_BENCH_COPY_TARGETS=s3 \
#     benches/sinks-vs-rclone.sh                                 # the 4 GiB memory figure
#
# What runs: `cargo bench -p pipe-storage --features test-servers --bench copy`
# (pipe-storage/benches/copy.rs). It starts the test servers of `pipe_storage::testing`
# on loopback (s3s-fs, an S3 server keeping objects as files; OpenSSH's sshd with
# internal-sftp), makes a file of PIPE_BENCH_COPY_MIB MiB of incompressible bytes (or takes
# PIPE_BENCH_COPY_FILE), and for each target copies it PIPE_BENCH_COPY_RUNS times with
# `pipe_storage::put_file` into the default S3 / SFTP sink, in the bench's own process
# (Tokio's multi-threaded runtime, as in pipe-server), and with `rclone copyto`,
# alternating which goes first. Each copy is checked (size and SHA-256 of the receipt,
# size of the file the server stored) and then deleted.
#
# How to read it, per target:
#   seconds, MiB/s  wall time of the copy alone (not the servers' start), median of the runs
#   cpu s           CPU time of the copying process (user + system), median; steadier than
#                   wall time when the machine is shared. The servers' CPU is not in it.
#   peak RSS MiB    highest over the runs of the copying process's peak resident memory:
#                   for Pipe, the bench process's VmHWM, reset just before each copy (so it
#                   is the peak during the copy; the bench process stands in for Pipe's
#                   server); for rclone, /usr/bin/time's %M of the rclone process.
#   growth MiB      Pipe only: that peak minus VmRSS just before the copy, i.e. what the
#                   copy itself added. It must stay flat as the file grows (4 GiB: < 128).
#   ours/rclone     the ratios; the goal is <= 1 for seconds and peak RSS.
# Machine-readable lines: `RESULT target=… tool=… seconds=… mib_s=… cpu_s=… peak_rss_mib=…`
# and `RATIO target=… seconds=… cpu_s=… peak_rss=…`.
#
# rclone runs with its defaults (S3: 5 MiB chunks, 4 parts in flight, MD5 of the whole file
# computed before a multipart upload; SFTP: 32 KiB writes, 64 in flight) plus `--quiet
# --retries 1`; add flags with PIPE_BENCH_RCLONE_FLAGS (e.g. "--s3-disable-checksum").
# Pipe's sinks run with their defaults (S3: 8 MiB parts, 4 in flight, SHA-256 checksums;
# SFTP: russh-sftp's 32 KiB writes, 16 in flight).
#
# Needs: rclone and /usr/bin/time (installed here with apt-get when missing), s3s-fs and
# openssh-server (`cargo xtask test` installs them), and free space in $TMPDIR (or /tmp)
# of about three times the file (the source, the server's parts and the assembled object).
# Set CARGO_TARGET_DIR to build elsewhere than target/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIB=${PIPE_BENCH_COPY_MIB:-1024}
export PIPE_BENCH_COPY_MIB PIPE_BENCH_COPY_RUNS PIPE_BENCH_COPY_TARGETS PIPE_BENCH_COPY_FILE \
  PIPE_BENCH_COPY_TOOLS PIPE_BENCH_RCLONE PIPE_BENCH_RCLONE_FLAGS

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_updated=
install_package() {
  echo "installing $1 ..." >&2
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; then
    if [[ -z $apt_updated ]]; then
      as_root apt-get update -qq >/dev/null
      apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  fi
}

if [[ ${PIPE_BENCH_COPY_TOOLS:-pipe,rclone} == *rclone* ]]; then
  command -v "${PIPE_BENCH_RCLONE:-rclone}" >/dev/null || install_package rclone
  [[ -x /usr/bin/time ]] || install_package time
fi

# The source file, and the server's parts and the assembled object.
tmp=${TMPDIR:-/tmp}
if [[ -z ${PIPE_BENCH_COPY_FILE:-} ]]; then
  need_mib=$((MIB * 3 + 256))
else
  need_mib=$(($(stat -c %s "$PIPE_BENCH_COPY_FILE") / 1048576 * 2 + 256))
fi
avail_mib=$(df -Pm "$tmp" | awk 'NR == 2 { print $4 }')
if ((avail_mib < need_mib)); then
  echo "$tmp has $avail_mib MiB free; this run needs about $need_mib MiB" >&2
  exit 1
fi

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
(cd "$ROOT" && cargo bench -p pipe-storage --features test-servers --bench copy --no-run >&2)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd "$ROOT" && cargo bench -q -p pipe-storage --features test-servers --bench copy) | tee "$log"

echo
echo "summary"
awk '
  /^RESULT / || /^RATIO / {
    delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  }
  /^RESULT / {
    printf "  %-5s %-7s %8.2f s  %7.1f MiB/s  cpu %7.2f s  peak RSS %7.1f MiB%s\n",
      f["target"], f["tool"], f["seconds"], f["mib_s"], f["cpu_s"], f["peak_rss_mib"],
      ("rss_growth_mib" in f) ? sprintf("  (copy added %.1f MiB)", f["rss_growth_mib"]) : ""
    if (f["tool"] == "pipe" && f["target"] == "s3" && f["bytes"] >= 4 * 1024 ^ 3)
      s3_big = f["peak_rss_mib"]
  }
  /^RATIO / {
    printf "  %-5s ours/rclone: %.3f time, %.3f cpu, %.3f peak RSS (goal <= 1) %s\n",
      f["target"], f["seconds"], f["cpu_s"], f["peak_rss"],
      (f["seconds"] <= 1 && f["peak_rss"] <= 1) ? "ok" : "MISSED"
  }
  END {
    if (s3_big != "")
      printf "  4 GiB to S3: peak RSS %.1f MiB (goal < 128) %s\n", s3_big, (s3_big < 128) ? "ok" : "MISSED"
  }
' "$log"
