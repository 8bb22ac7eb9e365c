#!/usr/bin/env bash
# The streaming performance check from issue 4: one `edge-edet run` over the test clip measures
# end-to-end FPS and engine-only FPS in the same command (the CPU may be shared, so a ratio from
# two separate commands would mean little), plus the peak resident memory of the process.
#
#   scripts/bench_stream.sh [MODEL.onnx|ENGINE] [VIDEO] [extra edge-edet run flags...]
#
# Defaults: d0 exported to $TMPDIR/edge-edet-bench/d0.onnx (made once), ../shared/data/video/cars_short.mp4.
# Pass: end-to-end >= 85% of engine-only, peak RSS < 600 MiB.  Prints the summary and exits 1 on a miss.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${TMPDIR:-/tmp}/edge-edet-bench"
mkdir -p "$WORK"
MODEL="${1:-$WORK/d0.onnx}"
VIDEO="${2:-$(cd "$HERE/../.." && pwd)/shared/data/video/cars_short.mp4}"
shift $(( $# > 2 ? 2 : $# )) || true
if [ ! -f "$MODEL" ]; then
    edge-edet export --model d0 --output "$MODEL"
fi
edge-edet run --engine "$MODEL" --source "$VIDEO" --no-drop --headless --output "$WORK/out.mp4" \
    --summary-json "$WORK/summary.json" "$@"
python3 - "$WORK/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ratio, rss = s["end_to_end_vs_engine"], s["peak_rss_mb"]
ok = ratio >= 0.85 and rss < 600
print(f"end-to-end {s['end_to_end_fps']} FPS / engine-only {s['engine_fps']} FPS = {ratio:.1%} "
      f"(need >= 85%); peak RSS {rss} MiB (need < 600): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
