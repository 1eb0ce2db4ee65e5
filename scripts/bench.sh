#!/usr/bin/env bash
# Benchmark ckptconv against cp of the same bytes, in the same run. No Python needed.
#
#   scripts/bench.sh                    # sizes 0.5 1 2 4 GB, 3 runs each
#   BENCH_SIZES="2" BENCH_RUNS=5 scripts/bench.sh
#   BENCH_DIR=/big/disk scripts/bench.sh
#   BENCH_CKPT=/tmp/tfb/model scripts/bench.sh   # a given checkpoint (e.g. one TensorFlow
#                                                # wrote: scripts/tf_bench_checkpoint.py)
#
# For each size it makes a checkpoint of about 300 float32 tensors of mixed sizes with
# ckptconv's own writer (from a synthetic safetensors file), then times, page cache warm:
#   ckpt→safetensors, ckpt→ckpt, ckpt→h5, h5→ckpt, safetensors→ckpt (each as is, which
#   fsyncs its outputs before renaming them, and with --no-fsync), and verify;
# and `cp` of the checkpoint's data file, plain and followed by `sync` of the copy (the
# fair baseline for the durable default), taking the median of BENCH_RUNS runs, and the
# peak RSS of all runs (GNU time). Then 20,000 tensors of 1 KB. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_CKPT:-}" ]; then SIZES="${BENCH_SIZES:-}"; else SIZES="${BENCH_SIZES:-0.5 1 2 4}"; fi
RUNS="${BENCH_RUNS:-3}"
DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/ckptconv-bench}"
WARM=""
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }

cargo build --release --quiet --bin ckptconv --example synth
BIN="$PWD/target/release/ckptconv"
SYNTH="$PWD/target/release/examples/synth"
mkdir -p "$DIR"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
echo "dir: $DIR ($(df -h "$DIR" | awk 'NR==2 {print $1}'))" >&2

# run LABEL CMD... : RUNS timed runs; prints "median_seconds max_rss_mb"
measure() {
  local times=() rss=0 out t m
  for _ in $(seq "$RUNS"); do
    rm -rf "$DIR/out" "$DIR"/out.* "$DIR/cpout"
    sync   # no writeback left over from the previous run
    # Page cache warm for every run: some VMs (this one: DAMON proactive reclaim) page
    # out file pages that were not touched for a minute.
    [ -z "$WARM" ] || cat $WARM > /dev/null
    out=$("$TIME" -f "%e %M" "$@" 2>&1 >/dev/null | tail -1)
    t=${out% *}; m=${out#* }
    times+=("$t")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v r="$rss" '{a[NR]=$1} END {printf "%.3f %.0f\n", a[int((NR+1)/2)], r/1024}'
}

row() { # direction input durable_s cp_sync_s fast_s cp_s rss
  awk -v d="$1" -v s="$2" -v t="$3" -v cs="$4" -v f="$5" -v c="$6" -v r="$7" 'BEGIN {
    if (f == "-") printf "| %s | %s | %.2f | %.2f | %.2f× | – | %.2f | %.2f× | %s |\n", d, s, t, cs, t/cs, c, t/c, r;
    else printf "| %s | %s | %.2f | %.2f | %.2f× | %.2f | %.2f | %.2f× | %s |\n", d, s, t, cs, t/cs, f, c, f/c, r }'
}

# direction LABEL INPUT OUT... : the conversion durable (default) and with --no-fsync.
direction() {
  local name="$1" label="$2" in="$3" out="$4" t r f r2
  read -r t r < <(measure "$BIN" convert "$in" -o "$out" --no-progress)
  read -r f r2 < <(measure "$BIN" convert "$in" -o "$out" --no-progress --no-fsync)
  [ "$r2" -gt "$r" ] && r=$r2
  row "$name" "$label" "$t" "$cpst" "$f" "$cpt" "$r"
}

# bench LABEL CKPT_PREFIX: every direction from and back to this checkpoint.
bench() {
  local label="$1" ck="$2" st="$DIR/in.safetensors" h5="$DIR/in.h5" data t r
  rm -f "$st" "$h5"
  "$BIN" convert "$ck" -o "$st" --no-progress --no-fsync >/dev/null
  "$BIN" convert "$ck" -o "$h5" --no-progress --no-fsync >/dev/null
  data=$(ls "$ck".data-* | head -1)
  WARM="$st $(ls "$ck".data-* | tr '\n' ' ') $h5"
  read -r cpt _ < <(measure cp "$data" "$DIR/cpout")
  read -r cpst _ < <(measure sh -c 'cp "$1" "$2" && sync "$2"' _ "$data" "$DIR/cpout")
  direction "ckpt→safetensors" "$label" "$ck" "$DIR/out.safetensors"
  direction "ckpt→ckpt" "$label" "$ck" "$DIR/out/model"
  direction "ckpt→h5" "$label" "$ck" "$DIR/out.h5"
  direction "h5→ckpt" "$label" "$h5" "$DIR/out/model"
  direction "safetensors→ckpt" "$label" "$st" "$DIR/out/model"
  read -r t r < <(measure "$BIN" verify "$ck")
  row "verify" "$label" "$t" "$cpst" "-" "$cpt" "$r"
  rm -f "$st" "$h5"
}

echo "cp: $(cp --version | head -1)" >&2
echo "| direction | input | ckptconv s | cp+sync s | vs cp+sync | --no-fsync s | cp s | vs cp | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
if [ -n "${BENCH_CKPT:-}" ]; then
  bench "$(basename "$BENCH_CKPT") ($(du -sh "$BENCH_CKPT".data-* | awk '{print $1}' | head -1), given)" "$BENCH_CKPT"
fi
for size in $SIZES; do
  bytes=$(awk -v s="$size" 'BEGIN {printf "%d", s*1024*1024*1024}')
  syn="$DIR/synth.safetensors"; ck="$DIR/ck$size/model"
  "$SYNTH" "$syn" "$bytes" 300
  "$BIN" convert "$syn" -o "$ck" --no-progress --no-fsync >/dev/null
  rm -f "$syn"
  bench "${size} GB" "$ck"
  rm -rf "$DIR/ck$size"
done

# Many small tensors: 20,000 × 1 KB.
syn="$DIR/synth.safetensors"; ck="$DIR/small/model"
rm -rf "$DIR/small"
"$SYNTH" "$syn" $((20000 * 1024)) 20000
"$BIN" convert "$syn" -o "$ck" --no-progress >/dev/null
rm -f "$syn"
bench "20,000 × 1 KB" "$ck"
rm -rf "$DIR"
