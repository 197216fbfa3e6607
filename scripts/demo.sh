#!/usr/bin/env bash
# `make demo`: the edgecnn pipeline end to end on generated data, on this machine.
#
#   synthetic dataset -> train the default detector -> calibration set -> int8 quantisation
#   with a float-vs-int8 report and a release gate -> evaluation with plots -> latency
#   benchmark -> the camera daemon on a folder of frames, with annotated snapshots -> object
#   tracking on a synthetic video -> an offline arm64 bundle.
#
# About 15 minutes on 2 CPU cores, most of it training. DEMO_EPOCHS / DEMO_N shorten it;
# DEMO_MODEL / DEMO_IMGSZ pick another zoo model.
set -euo pipefail
cd "$(dirname "$0")/.."

E=".venv/bin/edgecnn"
OUT="${DEMO_OUT:-runs/demo}"
N="${DEMO_N:-600}"
EPOCHS="${DEMO_EPOCHS:-60}"
IMGSZ="${DEMO_IMGSZ:-160}"
MODEL_ARGS=()
[ -n "${DEMO_MODEL:-}" ] && MODEL_ARGS=(--model "$DEMO_MODEL")

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$OUT"

step "1. synthetic dataset ($N images, ${IMGSZ}px, 4 shape classes)"
"$E" data synth "$OUT/data" --n "$N" --imgsz "$IMGSZ"
"$E" data check "$OUT/data/data.yaml"

step "2. the model zoo's detectors"
"$E" models --task detect

step "3. train the default detector (or \$DEMO_MODEL) for $EPOCHS epochs"
"$E" train --data "$OUT/data/data.yaml" "${MODEL_ARGS[@]}" --imgsz "$IMGSZ" --epochs "$EPOCHS" \
    --out "$OUT/run"
echo "pictures: $OUT/run/curves.png $OUT/run/train_batch.jpg $OUT/run/val_pred.jpg $OUT/run/confusion_matrix.png"

step "4. calibration set and int8 quantisation, gated at a 1.5-point mAP50 drop"
"$E" calib build --data "$OUT/data/data.yaml" --out "$OUT/calib" --n 200
rc=0
"$E" quantize "$OUT/run/model.keras" --calib "$OUT/calib" --out "$OUT/model_int8.tflite" \
    --data "$OUT/data/data.yaml" --report "$OUT/report" --max-drop 1.5 || rc=$?
if [ "$rc" -eq 1 ]; then
    echo "release gate: the int8 model lost more than 1.5 mAP50 points (see the report); going on"
elif [ "$rc" -ne 0 ]; then
    exit "$rc"
fi

step "5. evaluate the int8 model on the test split (PR curves in $OUT/plots)"
"$E" eval "$OUT/model_int8.tflite" --data "$OUT/data/data.yaml" --split test --plots "$OUT/plots"
"$E" inspect "$OUT/model_int8.tflite"

step "6. latency on this machine (x86: int8 is not faster than float here; on ARM it is)"
"$E" bench "$OUT/model_int8.tflite" --threads 1,2 --runs 50

step "7. the camera daemon on a folder of frames: JSON lines out, annotated snapshots"
cat > "$OUT/device.yaml" <<EOF
device: demo
model: {path: $OUT/model_int8.tflite}
source: {type: opencv, input: $OUT/data/test}
sinks:
  - {type: jsonl, path: $OUT/detections.jsonl}
  - {type: snapshots, directory: $OUT/snapshots, min_interval_s: 0, max_files: 12}
EOF
"$E" run --config "$OUT/device.yaml" --validate-config
"$E" run --config "$OUT/device.yaml" --max-frames 40
echo "annotated frames: $OUT/snapshots"
head -c 600 "$OUT/detections.jsonl"; echo

step "8. object tracking on a synthetic video: ids on the drawn frames, MOTA / IDF1 scores"
"$E" data synth-video "$OUT/clip.avi" --frames 60 --objects 3 --imgsz "$IMGSZ" --seed 1
"$E" run --model "$OUT/model_int8.tflite" --source "$OUT/clip.avi" --track \
    --jsonl "$OUT/tracks.jsonl" --save "$OUT/tracked"
"$E" eval-tracks "$OUT/tracks.jsonl" --gt "$OUT/clip.gt.txt"
echo "frames with track ids drawn: $OUT/tracked (ground truth: $OUT/clip.gt.txt)"

step "9. offline arm64 bundle (hash-pinned wheels, model, unit, manifest)"
"$E" package "$OUT/model_int8.tflite" --target arm64 --out "$OUT/dist/shapes-arm64.tar.gz"
ls -lh "$OUT/dist"

step "done: everything is under $OUT"
