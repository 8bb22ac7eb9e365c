#!/usr/bin/env bash
# Export, calibrate, build and benchmark every MODEL x PRECISION on this board, then print a table.
# Thin: every step is an `edge-edet` command (export, calibrate, build, bench); no logic lives here.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: build_all.sh MODELS PRECISIONS [IMAGES]

Export, calibrate (int8), build and benchmark each model x precision on this machine, then print a
summary (engine, precision, build time, size, layers per precision) and run `edge-edet bench` on
each engine.

  MODELS      comma-separated model names, e.g. lite0,d0,d1
  PRECISIONS  comma-separated, from fp32, fp16, int8, best
  IMAGES      folder of calibration images (needed for int8; best uses it when given)

environment (optional):
  OUT=engines          output folder (ONNX, calibration caches, engines, sidecars, bench reports)
  WEIGHTS=coco         export --weights (checkpoint path, 'coco', or a bundled name)
  INPUT_SIZE=          export --input-size (default: the model's)
  NMS=onnx             export --nms (onnx works on every TensorRT; efficientnms: 8.5-10.x only)
  INT8_MODE=qdq        qdq: build the Q/DQ ONNX (any TensorRT); cache: FP32 ONNX + calibration cache
                       through builder flags (TensorRT 8.5 / 10.x only)
  WORKSPACE=1024       build workspace in MiB (256 on 4 GB boards)
  ITERATIONS=200       bench iterations
  EDGE_EDET=...        the command to run (default: `edge-edet` if installed, else python3 -m edge_edet
                       from this checkout)

On a Jetson without PyTorch or ONNX Runtime (stock JetPack), export and calibrate on a workstation
and copy the files into OUT first; the script then only builds and benchmarks:
  OUT/MODEL.onnx            from  edge-edet export --model MODEL --weights W --nms onnx --output MODEL.onnx
  OUT/MODEL_int8.onnx       from  edge-edet calibrate --model MODEL.onnx --images DIR --output MODEL_int8.onnx
                                  --cache MODEL.calib [--fp16: TensorRT 10.x / 11.x]   (int8 with INT8_MODE=qdq)
  OUT/MODEL.calib           the same calibrate command's --cache (int8 with INT8_MODE=cache; best uses it if there)
A step whose files are missing and whose tool (torch, onnxruntime) is missing stops the script
before any build, naming the files to copy.

example (on the Jetson):
  bash build_engines/build_all.sh lite0,d0 fp16,int8 ~/coco_val_images
EOF
}

die() { echo "build_all.sh: error: $*" >&2; exit 2; }

if [[ $# -ge 1 && ( "$1" == "-h" || "$1" == "--help" ) ]]; then usage; exit 0; fi
[[ $# -ge 2 && $# -le 3 ]] || { usage >&2; exit 2; }

MODELS="$1"; PRECISIONS="$2"; IMAGES="${3:-}"
OUT="${OUT:-engines}"; WEIGHTS="${WEIGHTS:-coco}"; NMS="${NMS:-onnx}"; INT8_MODE="${INT8_MODE:-qdq}"
WORKSPACE="${WORKSPACE:-1024}"; ITERATIONS="${ITERATIONS:-200}"; INPUT_SIZE="${INPUT_SIZE:-}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${EDGE_EDET:-}" ]]; then
  if command -v edge-edet >/dev/null 2>&1; then EDGE_EDET="edge-edet"
  else EDGE_EDET="env PYTHONPATH=$HERE${PYTHONPATH:+:$PYTHONPATH} python3 -m edge_edet"; fi
fi

# -- refuse bad arguments before any minute-long step ---------------------------------------------
IFS=',' read -r -a model_list <<< "$MODELS"
IFS=',' read -r -a precision_list <<< "$PRECISIONS"
need_images=0
for p in "${precision_list[@]}"; do
  case "$p" in
    fp32|fp16|best) ;;
    int8) need_images=1 ;;
    *) die "precision '$p' is not one of fp32, fp16, int8, best" ;;
  esac
done
case "$INT8_MODE" in qdq|cache) ;; *) die "INT8_MODE=$INT8_MODE is not qdq or cache" ;; esac
if [[ -n "$IMAGES" && ! -d "$IMAGES" ]]; then die "IMAGES folder $IMAGES does not exist"; fi
[[ ${#model_list[@]} -gt 0 && -n "${model_list[0]}" ]] || die "no models given"

# -- which export / calibrate steps are needed, and can this machine run them? ------------------------
has_module() { python3 -c "import $1" >/dev/null 2>&1; }
need_export=(); need_calibrate=()
for model in "${model_list[@]}"; do
  [[ -f "$OUT/$model.onnx" ]] || need_export+=("$model")
  if [[ $need_images -eq 1 ]]; then
    if [[ "$INT8_MODE" == "qdq" && ! -f "$OUT/${model}_int8.onnx" ]] || [[ "$INT8_MODE" == "cache" && ! -f "$OUT/$model.calib" ]]; then
      need_calibrate+=("$model")
    fi
  fi
done
if [[ ${#need_export[@]} -gt 0 ]] && ! has_module torch; then
  files=""; for m in "${need_export[@]}"; do files+=" $OUT/$m.onnx"; done
  die "exporting needs PyTorch, which this machine does not have: export on a workstation (edge-edet export --model MODEL --weights $WEIGHTS --nms $NMS --output MODEL.onnx) and copy$files here first"
fi
if [[ ${#need_calibrate[@]} -gt 0 ]]; then
  [[ -n "$IMAGES" ]] || die "int8 needs calibration images for ${need_calibrate[*]}: give an IMAGES folder as the third argument (or copy the calibrated files into $OUT)"
  if ! has_module onnxruntime; then
    files=""; for m in "${need_calibrate[@]}"; do
      if [[ "$INT8_MODE" == "qdq" ]]; then files+=" $OUT/${m}_int8.onnx"; else files+=" $OUT/$m.calib"; fi
    done
    die "calibrating needs ONNX Runtime, which this machine does not have: run edge-edet calibrate on a workstation and copy$files here first"
  fi
fi
TRT_VERSION="$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null)" \
  || die "building engines needs TensorRT: on a Jetson it comes with JetPack; on a desktop GPU pip install tensorrt (see \`$EDGE_EDET doctor\`)"
TRT_MAJOR="${TRT_VERSION%%.*}"
if [[ "$INT8_MODE" == "cache" && "$TRT_MAJOR" -ge 11 ]]; then
  die "INT8_MODE=cache needs TensorRT 8.5 or 10.x (TensorRT $TRT_VERSION removed calibrators); use INT8_MODE=qdq"
fi
mkdir -p "$OUT" || die "cannot create $OUT"
echo "TensorRT $TRT_VERSION; models: $MODELS; precisions: $PRECISIONS; output: $OUT"

run() { echo "+ $*"; "$@"; }
built=()
failed=()
for model in "${model_list[@]}"; do
  onnx="$OUT/$model.onnx"
  export_args=(export --model "$model" --weights "$WEIGHTS" --nms "$NMS" --output "$onnx")
  [[ -n "$INPUT_SIZE" ]] && export_args+=(--input-size "$INPUT_SIZE")
  if [[ -f "$onnx" ]]; then echo "reusing $onnx"
  elif ! run $EDGE_EDET "${export_args[@]}"; then failed+=("$model (export)"); continue; fi

  if [[ " ${need_calibrate[*]} " == *" $model "* ]]; then
    # strongly typed TensorRT (10.x Q/DQ, 11.x) runs the float layers in the graph's types: FP16 there
    fp16=(); [[ "$INT8_MODE" == "qdq" && "$TRT_MAJOR" -ge 10 ]] && fp16=(--fp16)
    run $EDGE_EDET calibrate --model "$onnx" --images "$IMAGES" --output "$OUT/${model}_int8.onnx" \
      --cache "$OUT/$model.calib" "${fp16[@]}" || { failed+=("$model (calibrate)"); continue; }
  fi

  for precision in "${precision_list[@]}"; do
    engine="$OUT/${model}_${precision}.trt"
    build_args=(build --engine "$engine" --workspace "$WORKSPACE" --timing-cache "$OUT/timing.cache")
    case "$precision" in
      int8)
        if [[ "$INT8_MODE" == "qdq" ]]; then build_args+=(--onnx "$OUT/${model}_int8.onnx")
        else build_args+=(--onnx "$onnx" --precision int8 --calib-cache "$OUT/$model.calib"); fi ;;
      best)
        build_args+=(--onnx "$onnx" --precision best)
        [[ "$TRT_MAJOR" -lt 11 && -f "$OUT/$model.calib" ]] && build_args+=(--calib-cache "$OUT/$model.calib") ;;
      *) build_args+=(--onnx "$onnx" --precision "$precision") ;;
    esac
    if run $EDGE_EDET "${build_args[@]}"; then built+=("$engine"); else failed+=("$engine (build)"); fi
  done
done

# -- summary table from the sidecars, then bench ---------------------------------------------------
echo
python3 - "${built[@]}" <<'PY'
import json, os, sys
rows = [("engine", "precision", "build s", "MiB", "INT8", "FP16", "FP32", "other")]
for engine in sys.argv[1:]:
    with open(engine + ".json") as handle:
        extra = json.load(handle).get("extra", {})
    layers = extra.get("layer_precision", {})
    rows.append((os.path.basename(engine), extra.get("engine_precision", "?"), f"{extra.get('build_seconds', 0):.0f}",
                 f"{os.path.getsize(engine) / 2**20:.1f}", *(str(layers.get(k, "?")) for k in ("int8", "fp16", "fp32", "other"))))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
PY
for engine in "${built[@]}"; do
  echo
  run $EDGE_EDET bench --model "$engine" --iterations "$ITERATIONS" || failed+=("$engine (bench)")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo; echo "failed: ${failed[*]}" >&2; exit 1
fi
