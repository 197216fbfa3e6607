"""`edgecnn eval --predictions`: end to end against pycocotools on files, and its errors."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ultralytics_exports as ux
import yaml
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.data import load_split
from edgecnn.data.synth import write_synth_dataset
from edgecnn.data.writers import write_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synth_dataset(tmp_path_factory.mktemp("coco"), n=40, imgsz=96, seed=5, ratios=(0.5, 0.5))


def _noisy_predictions(data_yaml: Path, split: str, seed: int) -> list[dict]:
    """Ground truth jittered, some boxes dropped, some false positives, random scores."""
    rng = np.random.default_rng(seed)
    loaded = load_split(data_yaml, split)
    results = []
    for record in loaded.records:
        for box, cls in zip(record.boxes, record.class_ids, strict=True):
            if rng.random() < 0.15:
                continue
            x1, y1, x2, y2 = box + rng.normal(0, 3, 4)
            category = loaded.category_ids[int(cls) if rng.random() > 0.1 else int(rng.integers(4))]
            results.append(
                {
                    "image_id": record.image_id,
                    "category_id": int(category),
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(abs(y2 - y1))],
                    "score": float(rng.random()),
                }
            )
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, 70, 2)
            results.append(
                {
                    "image_id": record.image_id,
                    "category_id": int(rng.choice(loaded.category_ids)),
                    "bbox": [float(x), float(y), 20.0, 20.0],
                    "score": float(rng.random()),
                }
            )
    return results


def _pycocotools(gt_json: Path, results: list[dict]) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1]), float(ev.stats[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eval_matches_pycocotools_on_the_same_files(coco_set: Path, tmp_path: Path, seed: int) -> None:
    results = _noisy_predictions(coco_set, "val", seed)
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(results))
    out = runner.invoke(
        app, ["eval", "--data", str(coco_set), "--predictions", str(preds), "--json"], catch_exceptions=False
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    map50, map50_95 = _pycocotools(coco_set.parent / "annotations" / "instances_val.json", results)
    assert report["map50"] == pytest.approx(map50, abs=1e-4)
    assert report["map50_95"] == pytest.approx(map50_95, abs=1e-4)
    assert 0.3 < report["map50"] < 0.98  # the noise must make this a real test
    assert set(report["per_class"]) == {"circle", "square", "triangle", "cross"}
    # The text report gives the same numbers as percentages, marked as such.
    text = runner.invoke(app, ["eval", "--data", str(coco_set), "--predictions", str(preds)]).output
    lines = text.splitlines()
    map50, map50_95 = f"{100 * report['map50']:.2f}%", f"{100 * report['map50_95']:.2f}%"
    assert lines[1].split() == ["mAP50", map50, "mAP50-95", map50_95]
    assert lines[2].split() == ["class", "AP50%", "AP50-95%", "P%", "R%", "boxes"]
    circle = next(line.split() for line in lines[3:] if line.startswith("circle"))
    assert circle[1] == f"{100 * report['per_class']['circle']['ap50']:.2f}"


def test_yolo_layout_uses_sorted_path_image_ids_and_class_index(coco_set: Path, tmp_path: Path) -> None:
    """The same split rewritten as YOLO txt scores the same once ids are re-mapped by file name."""
    val = load_split(coco_set, "val")
    yolo_yaml = write_dataset(tmp_path / "yolo", {"val": val.records}, val.names, "yolo")
    yolo_val = load_split(yolo_yaml, "val")
    assert [r.image_id for r in yolo_val.records] == list(range(1, len(val.records) + 1))
    by_name = {r.path.name: r.image_id for r in yolo_val.records}
    coco_name = {r.image_id: r.path.name for r in val.records}
    results = _noisy_predictions(coco_set, "val", 7)
    for entry in results:
        entry["image_id"] = by_name[coco_name[entry["image_id"]]]
        entry["category_id"] = val.category_ids.index(entry["category_id"])
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(results))
    out = runner.invoke(app, ["eval", "--data", str(yolo_yaml), "--predictions", str(preds), "--json"])
    coco_results = _noisy_predictions(coco_set, "val", 7)
    map50, _ = _pycocotools(coco_set.parent / "annotations" / "instances_val.json", coco_results)
    assert json.loads(out.output)["map50"] == pytest.approx(map50, abs=1e-4)


def test_classification_predictions(tmp_path: Path) -> None:
    data = write_synth_dataset(tmp_path / "c", task="classify", n=20, imgsz=32, ratios=(0.5, 0.5))
    val = load_split(data, "val")
    # Right for every image except the first two, which get class (label + 1) % 4.
    results = [
        {"image_id": r.image_id, "category_id": (r.label + (1 if i < 2 else 0)) % 4, "score": 0.9}
        for i, r in enumerate(val.records)
    ]
    results.append({"image_id": val.records[0].image_id, "category_id": val.records[0].label, "score": 0.1})
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(results))
    out = runner.invoke(app, ["eval", "--data", str(data), "--predictions", str(preds), "--json"])
    report = json.loads(out.output)
    assert report["task"] == "classify"
    assert report["accuracy"] == pytest.approx(8 / 10)
    text = runner.invoke(app, ["eval", "--data", str(data), "--predictions", str(preds)]).output
    assert text.splitlines()[1].split()[:2] == ["accuracy", "80.00%"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "malformed JSON"),
        ('{"a": 1}', "expected a JSON list"),
        ('[{"image_id": 1, "category_id": 0, "bbox": [0, 0, 5], "score": 1}]', "result 0: bbox"),
        ('[{"image_id": 1, "category_id": 42, "bbox": [0, 0, 5, 5], "score": 1}]', "unknown category_id 42"),
        ('[{"image_id": 999, "category_id": 0, "bbox": [0, 0, 5, 5], "score": 1}]', "image_id 999 not in"),
    ],
)
def test_bad_predictions_file_is_one_line_exit_2(
    coco_set: Path, tmp_path: Path, content: str, message: str
) -> None:
    preds = tmp_path / "bad.json"
    preds.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", "eval", "--data", str(coco_set), "--predictions", str(preds)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(preds) in lines[0] and message in lines[0]


@pytest.mark.tf
def test_eval_an_ultralytics_export_as_it_comes(ultralytics_models: dict[str, Path], tmp_path: Path) -> None:
    """``edgecnn eval EXPORT.tflite --data ...`` with no model flags: the export's metadata gives the
    spec. The stand-in (``tests/ultralytics_exports.py``) finds the same person and dog on every
    image; they are added to the ground truth of half the validation images, so the numbers are
    neither 0 nor 1, and pycocotools scores the saved results as eval does."""
    root = tmp_path / "set"
    synth = ["data", "synth", str(root), "--n", "12", "--imgsz", str(ux.IMGSZ), "--classes", "3"]
    result = runner.invoke(app, [*synth, "--ratios", "0.5,0.5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = root / "data.yaml"
    config = yaml.safe_load(data.read_text())
    config["names"] = dict(enumerate(ux.LABELS))  # the model's classes, matched by name
    data.write_text(yaml.safe_dump(config))
    gt_json = root / "annotations" / "instances_val.json"
    gt = json.loads(gt_json.read_text())
    for category in gt["categories"]:
        category["name"] = ux.LABELS[category["id"]]
    next_id = max(a["id"] for a in gt["annotations"]) + 1
    for image in gt["images"][::2]:  # the 64x64 images are the model's input: no letterbox
        for label, _, x1, y1, x2, y2 in ux.EXPECTED_DETECTIONS:
            bbox = [x1, y1, x2 - x1, y2 - y1]
            category = ux.LABELS.index(label)
            annotation = {"id": next_id, "image_id": image["id"], "category_id": category, "bbox": bbox}
            gt["annotations"].append({**annotation, "area": bbox[2] * bbox[3], "iscrowd": 0})
            next_id += 1
    gt_json.write_text(json.dumps(gt))

    saved = tmp_path / "results.json"
    model = str(ultralytics_models["v8"])
    args = ["eval", model, "--data", str(data), "--json", "--save-results", str(saved)]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "detect" and report["num_images"] == len(gt["images"]) == 6
    per_class = report["per_class"]
    assert list(per_class) == ux.LABELS
    for k, label in enumerate(ux.LABELS):
        assert per_class[label]["num_gt"] == sum(a["category_id"] == k for a in gt["annotations"])
    # mAP50 is the mean AP50 of the classes with ground truth; so is mAP50-95
    for key in ("ap50", "ap50_95"):
        values = [c[key] for c in per_class.values() if c["num_gt"] > 0]
        assert report[f"map{key[2:]}"] == pytest.approx(sum(values) / len(values), abs=1e-9)
    assert 0.0 < per_class["person"]["ap50"] < 1.0 and 0.0 < per_class["dog"]["ap50"] < 1.0
    results = json.loads(saved.read_text())
    person = [r for r in results if r["category_id"] == 0 and r["score"] == pytest.approx(0.9, abs=1e-3)]
    assert len(person) == 6 and all(np.allclose(r["bbox"], [12, 20, 12, 16], atol=0.01) for r in person)
    map50, map50_95 = _pycocotools(gt_json, results)
    assert report["map50"] == pytest.approx(map50, abs=1e-4)
    assert report["map50_95"] == pytest.approx(map50_95, abs=1e-4)
