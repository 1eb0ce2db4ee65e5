#!/usr/bin/env bash
# Benchmark ckptconv against cp of the same bytes, in the same run. No Python needed.
#
#   scripts/bench.sh                    # sizes 0.5 1 2 4 GB, 3 runs each
#   BENCH_SIZES="2" BENCH_RUNS=5 scripts/bench.sh
#   BENCH_DIR=/big/disk scripts/bench.sh
#   BENCH_READ=--no-mmap scripts/bench.sh   # inputs read with pread, never mapped
#   BENCH_CKPT=/tmp/tfb/model scripts/bench.sh   # a given checkpoint (e.g. one TensorFlow
#                                                # wrote: scripts/tf_bench_checkpoint.py)
#
# For each size it makes a checkpoint of about 300 float32 tensors of mixed sizes with
# ckptconv's own writer (from a synthetic safetensors file), then times, page cache warm:
#   ckpt→safetensors, ckpt→ckpt, ckpt→h5, h5→ckpt, safetensors→ckpt (each as is, which
#   fsyncs its outputs before renaming them, and with --no-fsync), and verify;
# each run right after a run of `cp` of the checkpoint's data file (plain for
# --no-fsync and verify; followed by `sync` of the copy for the durable default, its fair
# baseline). It prints the median time of BENCH_RUNS runs of each, the median of the
# ratios of each pair, and the peak RSS of all runs (GNU time). Then 20,000 tensors of
# 1 KB. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BENCH_CKPT:-}" ]; then SIZES="${BENCH_SIZES:-}"; else SIZES="${BENCH_SIZES:-0.5 1 2 4}"; fi
RUNS="${BENCH_RUNS:-3}"
READ="${BENCH_READ:-}"   # e.g. --no-mmap (word-split on purpose)
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

# once CMD... : one timed run, page cache warm and no writeback pending; prints
# "seconds max_rss_kb".
once() {
  rm -rf "$DIR/out" "$DIR"/out.* "$DIR/cpout"
  sync   # no writeback left over from the previous run
  # Page cache warm for every run: some VMs (this one: DAMON proactive reclaim) page
  # out file pages that were not touched for a minute.
  [ -z "$WARM" ] || cat $WARM > /dev/null
  if ! "$TIME" -o "$DIR/time" -f "%e %M" "$@" >/dev/null 2>"$DIR/stderr"; then
    echo "failed: $*" >&2
    cat "$DIR/stderr" >&2
    kill -TERM $$   # stop the whole benchmark: a failed run has no time worth printing
    exit 1
  fi
  tail -1 "$DIR/time"
}

# pair BASELINE CMD... : RUNS rounds of the baseline (cp of the checkpoint's data file,
# plain or followed by sync: BASELINE is cp or cpsync) then CMD, back to back, so that
# each ratio compares two runs made moments apart (this VM's speed drifts by up to 5×
# over minutes). Prints "median_s baseline_median_s median_ratio max_rss_mb".
pair() {
  local base="$1" times=() btimes=() ratios=() rss=0 b t m
  shift
  for _ in $(seq "$RUNS"); do
    if [ "$base" = cp ]; then
      read -r b _ < <(once cp "$data" "$DIR/cpout")
    else
      read -r b _ < <(once sh -c 'cp "$1" "$2" && sync "$2"' _ "$data" "$DIR/cpout")
    fi
    read -r t m < <(once "$@")
    btimes+=("$b"); times+=("$t")
    echo "  $base $b | $(basename "$1") ${*:2} $t" >&2
    ratios+=("$(awk -v t="$t" -v b="$b" 'BEGIN {printf "%.4f", (b > 0 ? t / b : 0)}')")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$(median "${times[@]}") $(median "${btimes[@]}") $(median "${ratios[@]}") $((rss / 1024))"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

row() { # direction input durable_s cp_sync_s ratio fast_s cp_s ratio rss
  # A ratio to a baseline under 50 ms (the 20,000 × 1 KB case: 20 MB) says nothing: "–".
  awk -v d="$1" -v s="$2" -v t="$3" -v cs="$4" -v r1="$5" -v f="$6" -v c="$7" -v r2="$8" -v r="$9" '
    function ratio(x, base) { return base < 0.05 ? "–" : sprintf("%.2f×", x) }
    BEGIN {
    if (f == "-") printf "| %s | %s | %.2f | – | – | – | %.2f | %s | %s |\n", d, s, t, c, ratio(r2, c), r;
    else printf "| %s | %s | %.2f | %.2f | %s | %.2f | %.2f | %s | %s |\n", d, s, t, cs, ratio(r1, cs), f, c, ratio(r2, c), r }'
}

# direction LABEL INPUT OUT... : the conversion durable (default, against cp + sync) and
# with --no-fsync (against cp).
direction() {
  local name="$1" label="$2" in="$3" out="$4" t cs r1 f c r2 r rr
  shift 4   # the rest: extra convert flags
  # Warm only this direction's input and cp's: at 4 GiB, keeping all three inputs in the
  # page cache as well as the outputs put the VM under memory pressure.
  if [ -f "$in" ]; then WARM="$data $in"; else WARM="$(ls "$in".data-* | tr '\n' ' ')"; fi
  read -r t cs r1 r < <(pair cpsync "$BIN" $READ convert "$in" -o "$out" --no-progress "$@")
  read -r f c r2 rr < <(pair cp "$BIN" $READ convert "$in" -o "$out" --no-progress --no-fsync "$@")
  [ "$rr" -gt "$r" ] && r=$rr
  row "$name" "$label" "$t" "$cs" "$r1" "$f" "$c" "$r2" "$r"
}

# bench LABEL CKPT_PREFIX: every direction from and back to this checkpoint.
bench() {
  local label="$1" ck="$2" st="$DIR/in.safetensors" h5="$DIR/in.h5" t c r2 r
  rm -f "$st" "$h5"
  "$BIN" convert "$ck" -o "$st" --no-progress --no-fsync >/dev/null
  # A synthetic checkpoint records no Keras model: its .h5 is a plain HDF5 file.
  "$BIN" convert "$ck" -o "$h5" --layout flat --no-progress --no-fsync >/dev/null
  data=$(ls "$ck".data-* | head -1)
  direction "ckpt→safetensors" "$label" "$ck" "$DIR/out.safetensors"
  direction "ckpt→ckpt" "$label" "$ck" "$DIR/out/model"
  direction "ckpt→h5" "$label" "$ck" "$DIR/out.h5" --layout flat
  direction "h5→ckpt" "$label" "$h5" "$DIR/out/model"
  direction "safetensors→ckpt" "$label" "$st" "$DIR/out/model"
  WARM="$(ls "$ck".data-* | tr '\n' ' ')"
  read -r t c r2 r < <(pair cp "$BIN" $READ verify "$ck")
  row "verify" "$label" "$t" "-" "-" "-" "$c" "$r2" "$r"
  rm -f "$st" "$h5"
}

echo "cp: $(cp --version | head -1)" >&2
echo "| direction | input | ckptconv s | cp+sync s | vs cp+sync | --no-fsync s | cp s | vs cp | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
if [ -n "${BENCH_CKPT:-}" ]; then
  bench "$(basename "$BENCH_CKPT") ($(du -sh "$BENCH_CKPT".data-* | awk '{print $1}' | head -1), given)" "$BENCH_CKPT"
fi
for size in $SIZES; do
  bytes=$(awk -v s="$size" 'BEGIN {printf "%.0f", s*1024*1024*1024}')  # not %d: mawk caps it at 2^31-1
  syn="$DIR/synth.safetensors"; ck="$DIR/ck$size/model"
  "$SYNTH" "$syn" "$bytes" 300
  "$BIN" convert "$syn" -o "$ck" --no-progress --no-fsync >/dev/null
  rm -f "$syn"
  bench "${size} GiB ($(du -h "$ck".data-* | awk '{print $1}' | head -1))" "$ck"
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
