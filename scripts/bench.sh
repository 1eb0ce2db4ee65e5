#!/usr/bin/env bash
# Benchmark ckptconv against cp of the same bytes, in the same run. No Python needed.
#
#   scripts/bench.sh                    # sizes 0.5 1 2 4 GB, 3 runs each
#   BENCH_SIZES="2" BENCH_RUNS=5 scripts/bench.sh
#   BENCH_DIR=/big/disk scripts/bench.sh
#
# For each size it makes a checkpoint of about 300 float32 tensors of mixed sizes with
# ckptconv's own writer (from a synthetic safetensors file), then times, page cache warm:
#   ckpt→safetensors, ckpt→ckpt, ckpt→h5, h5→ckpt, safetensors→ckpt, verify,
# and `cp` of the checkpoint's data file, taking the median of BENCH_RUNS runs, and the
# peak RSS of each run (GNU time). Then 20,000 tensors of 1 KB. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${BENCH_SIZES:-0.5 1 2 4}"
RUNS="${BENCH_RUNS:-3}"
DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/ckptconv-bench}"
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
    out=$("$TIME" -f "%e %M" "$@" 2>&1 >/dev/null | tail -1)
    t=${out% *}; m=${out#* }
    times+=("$t")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v r="$rss" '{a[NR]=$1} END {printf "%.3f %.0f\n", a[int((NR+1)/2)], r/1024}'
}

row() { # direction size seconds cp_seconds cp_sync_seconds rss
  awk -v d="$1" -v s="$2" -v t="$3" -v c="$4" -v cs="$5" -v r="$6" 'BEGIN {printf "| %s | %s | %.2f | %.2f | %.2f× | %.2f | %.2f× | %s |\n", d, s, t, c, t/c, cs, t/cs, r}'
}

echo "| direction | size | median s | cp s | vs cp | cp+sync s | vs cp+sync | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
  bytes=$(awk -v s="$size" 'BEGIN {printf "%d", s*1024*1024*1024}')
  st="$DIR/s$size.safetensors"; ck="$DIR/ck$size/model"; h5="$DIR/h$size.h5"
  [ -f "$st" ] || "$SYNTH" "$st" "$bytes" 300
  [ -f "$ck.index" ] || "$BIN" convert "$st" -o "$ck" --no-progress >/dev/null
  [ -f "$h5" ] || "$BIN" convert "$ck" -o "$h5" --no-progress >/dev/null
  cat "$st" "$ck".data-* "$h5" > /dev/null   # warm the page cache
  data=$(ls "$ck".data-*)
  read -r cpt _ < <(measure cp "$data" "$DIR/cpout")
  read -r cpst _ < <(measure sh -c 'cp "$1" "$2" && sync "$2"' _ "$data" "$DIR/cpout")
  read -r t r < <(measure "$BIN" convert "$ck" -o "$DIR/out.safetensors" --no-progress); row "ckpt→safetensors" "${size} GB" "$t" "$cpt" "$cpst" "$r"
  read -r t r < <(measure "$BIN" convert "$ck" -o "$DIR/out/model" --no-progress);       row "ckpt→ckpt" "${size} GB" "$t" "$cpt" "$cpst" "$r"
  read -r t r < <(measure "$BIN" convert "$ck" -o "$DIR/out.h5" --no-progress);          row "ckpt→h5" "${size} GB" "$t" "$cpt" "$cpst" "$r"
  read -r t r < <(measure "$BIN" convert "$h5" -o "$DIR/out/model" --no-progress);       row "h5→ckpt" "${size} GB" "$t" "$cpt" "$cpst" "$r"
  read -r t r < <(measure "$BIN" convert "$st" -o "$DIR/out/model" --no-progress);       row "safetensors→ckpt" "${size} GB" "$t" "$cpt" "$cpst" "$r"
  read -r t r < <(measure "$BIN" verify "$ck");                                           row "verify" "${size} GB" "$t" "$cpt" "$cpst" "$r"
  rm -f "$st" "$h5"; rm -rf "$DIR/ck$size"
done

# Many small tensors: 20,000 × 1 KB.
st="$DIR/small.safetensors"; ck="$DIR/small/model"; h5="$DIR/small.h5"
rm -rf "$DIR/small" "$st" "$h5"
"$SYNTH" "$st" $((20000 * 1024)) 20000
"$BIN" convert "$st" -o "$ck" --no-progress >/dev/null
"$BIN" convert "$ck" -o "$h5" --no-progress >/dev/null
read -r cpt _ < <(measure cp "$ck".data-00000-of-00001 "$DIR/cpout")
read -r cpst _ < <(measure sh -c 'cp "$1" "$2" && sync "$2"' _ "$ck".data-00000-of-00001 "$DIR/cpout")
for d in "ckpt→safetensors:$ck:$DIR/out.safetensors" "ckpt→ckpt:$ck:$DIR/out/model" "ckpt→h5:$ck:$DIR/out.h5" "h5→ckpt:$h5:$DIR/out/model"; do
  IFS=: read -r name in out <<<"$d"
  read -r t r < <(measure "$BIN" convert "$in" -o "$out" --no-progress); row "$name" "20,000 × 1 KB" "$t" "$cpt" "$cpst" "$r"
done
rm -rf "$DIR"
