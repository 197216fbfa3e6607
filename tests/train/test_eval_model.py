"""`edgecnn eval MODEL`: Keras and TFLite models scored like their own results files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import edgecnn.cli.train_cmd  # noqa: F401  registers `train` until edgecnn.cli imports it
from edgecnn.cli.app import app

pytestmark = [pytest.mark.slow, pytest.mark.tf]
runner = CliRunner()
DETECT_KEYS = {"map50", "map50_95", "per_class", "task", "split", "num_predictions"}
CLASSIFY_KEYS = {"accuracy", "precision", "recall", "f1", "per_class", "confusion_matrix", "task", "split"}


def _eval(*args: str) -> dict:
    out = runner.invoke(app, ["eval", *args, "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.fixture(scope="module")
def float_tflite(overfit_detector: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The over-fitted detector converted to a float32 .tflite with its spec embedded."""
    import keras
    import tensorflow as tf

    from edgecnn.quantize.metadata_writer import write_spec
    from edgecnn.runtime.spec import ModelSpec

    model = keras.models.load_model(overfit_detector / "model.keras")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path = tmp_path_factory.mktemp("tflite") / "det.tflite"
    path.write_bytes(converter.convert())
    write_spec(path, ModelSpec.load(overfit_detector / "spec.json"))
    return path


def test_keras_model_report_equals_scoring_its_own_results_file(
    overfit_detector: Path, overfit_data: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results.json"
    model = str(overfit_detector / "model.keras")
    report = _eval(model, "--data", str(overfit_data), "--split", "train", "--save-results", str(results))
    assert set(report) >= DETECT_KEYS
    assert report["map50"] > 0.5  # a real model, so the comparison below means something
    entries = json.loads(results.read_text())
    assert len(entries) == report["num_predictions"] > 0
    assert set(entries[0]) == {"image_id", "category_id", "bbox", "score"}
    scored = _eval("--data", str(overfit_data), "--split", "train", "--predictions", str(results))
    assert scored == report


def test_data_that_lists_the_classes_in_another_order_is_scored_by_name(
    overfit_detector: Path, overfit_data: Path, tmp_path: Path
) -> None:
    # The same COCO files with names: [square, circle]: the reader maps categories by name, so
    # the split's class 0 is now square. The model's circle must still be scored as circle.
    swapped = tmp_path / "swapped.yaml"
    config = yaml.safe_load(overfit_data.read_text())
    config.update(path=str(overfit_data.parent), names={0: "square", 1: "circle"})
    swapped.write_text(yaml.safe_dump(config))
    model = str(overfit_detector / "model.keras")
    report = _eval(model, "--data", str(overfit_data), "--split", "train")
    reordered = _eval(model, "--data", str(swapped), "--split", "train")
    assert report["map50"] > 0.5  # a real model: scoring circles as squares would show
    assert reordered["map50"] == report["map50"] and reordered["map50_95"] == report["map50_95"]
    assert reordered["per_class"]["circle"] == report["per_class"]["circle"]
    assert reordered["per_class"]["square"] == report["per_class"]["square"]
    assert list(reordered["per_class"]) == ["square", "circle"]


def test_other_class_names_are_scored_by_index_with_one_warning(
    overfit_detector: Path, overfit_data: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"  # a copy whose COCO categories and names are upper case
    shutil.copytree(overfit_data.parent, root)
    config = yaml.safe_load(overfit_data.read_text())
    coco_path = root / config["train"]
    coco = json.loads(coco_path.read_text())
    for category in coco["categories"]:
        category["name"] = category["name"].upper()
    coco_path.write_text(json.dumps(coco))
    renamed = root / "data.yaml"
    renamed.write_text(yaml.safe_dump({**config, "names": {0: "CIRCLE", 1: "SQUARE"}}))
    args = [str(overfit_detector / "model.keras"), "--data", str(renamed), "--split", "train", "--json"]
    proc = subprocess.run([sys.executable, "-m", "edgecnn", "eval", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "class names differ" in ln]
    assert len(warnings) == 1 and warnings[0].endswith("; scoring by class index"), proc.stderr
    assert json.loads(proc.stdout)["map50"] > 0.5


def test_metrics_json_is_the_eval_report_of_the_saved_model(trained_detector: Path, det_data: Path) -> None:
    report = _eval(str(trained_detector / "model.keras"), "--data", str(det_data))
    saved = json.loads((trained_detector / "metrics.json").read_text())
    assert saved == report


def test_eval_checks_the_split_against_the_model_once(
    trained_detector: Path, det_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecnn.evaluation import evaluator

    calls = []
    real = evaluator.check_split_fits

    def counted(*args: object, **kwargs: object) -> list[int]:
        calls.append(args[2:] or kwargs.get("source"))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluator, "check_split_fits", counted)
    _eval(str(trained_detector / "model.keras"), "--data", str(det_data))
    assert calls == [(str(det_data),)]  # once, naming the data.yaml for its error


def test_tflite_model_matches_keras_and_its_own_results(
    float_tflite: Path, overfit_detector: Path, overfit_data: Path, tmp_path: Path
) -> None:
    results = tmp_path / "tflite_results.json"
    report = _eval(
        str(float_tflite), "--data", str(overfit_data), "--split", "train", "--save-results", str(results)
    )
    keras_report = _eval(
        str(overfit_detector / "model.keras"), "--data", str(overfit_data), "--split", "train"
    )
    assert report["map50"] == pytest.approx(keras_report["map50"], abs=0.02)
    assert report["map50_95"] == pytest.approx(keras_report["map50_95"], abs=0.02)
    scored = _eval("--data", str(overfit_data), "--split", "train", "--predictions", str(results))
    assert scored == report


def test_tflite_path_never_imports_tensorflow(float_tflite: Path, overfit_data: Path) -> None:
    code = (
        "import sys, json\n"
        "from edgecnn.data import load_split\n"
        "from edgecnn.evaluation import evaluate_model, load_predictor\n"
        f"p = load_predictor({str(float_tflite)!r})\n"
        f"r = evaluate_model(p, load_split({str(overfit_data)!r}, 'train'))\n"
        "mods = {'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}\n"
        "print(json.dumps({'map50': r['map50'], **mods}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tf"] is False and out["keras"] is False
    assert out["map50"] > 0.5


def test_tflite_predictor_returns_outputs_in_stride_order(float_tflite: Path, overfit_detector: Path) -> None:
    from edgecnn.evaluation import load_predictor

    tfl = load_predictor(float_tflite)
    ker = load_predictor(overfit_detector / "model.keras")
    x = np.random.default_rng(0).uniform(0, 1, (2, 96, 96, 3)).astype("float32")
    a, b = tfl.predict_batch(x), ker.predict_batch(x)
    assert [o.shape for o in a] == [o.shape for o in b] == [(2, 6, 6, 21), (2, 3, 3, 21)]
    for p, q in zip(a, b, strict=True):
        np.testing.assert_allclose(p, q, atol=1e-3)


def test_classifier_eval_and_confusion_matrix_plot(
    trained_classifier: Path, cls_data: Path, tmp_path: Path
) -> None:
    report = _eval(
        str(trained_classifier / "model.keras"), "--data", str(cls_data), "--plots", str(tmp_path / "p")
    )
    assert set(report) >= CLASSIFY_KEYS
    assert np.array(report["confusion_matrix"]).sum() == 8
    png = (tmp_path / "p" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_detector_pr_curve_plot_in_both_modes(
    overfit_detector: Path, overfit_data: Path, tmp_path: Path
) -> None:
    results = tmp_path / "r.json"
    _eval(
        str(overfit_detector / "model.keras"),
        "--data",
        str(overfit_data),
        "--split",
        "train",
        "--plots",
        str(tmp_path / "a"),
        "--save-results",
        str(results),
    )
    _eval(
        "--data",
        str(overfit_data),
        "--split",
        "train",
        "--predictions",
        str(results),
        "--plots",
        str(tmp_path / "b"),
    )
    for d in ("a", "b"):
        for name in ("pr_curve.png", "confusion_matrix.png"):
            png = (tmp_path / d / name).read_bytes()
            assert png.startswith(b"\x89PNG") and len(png) > 5000, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pass a MODEL file (.keras or .tflite) or --predictions FILE"),
        (["MODEL", "--predictions", "MODEL"], "not both"),
        (["NOSPEC"], "no spec.json next to the model"),
        (["MODEL", "--data", "CLS"], "data.yaml: the model is a detect model but the val split is for"),
        (["MODEL", "--data", "THREE"], "three.yaml: the model has 2 classes (circle, square) but the val"),
    ],
)
def test_eval_errors_are_one_line_exit_2(
    args: list[str], message: str, trained_detector: Path, det_data: Path, cls_data: Path, tmp_path: Path
) -> None:
    nospec = tmp_path / "model.keras"
    nospec.write_bytes((trained_detector / "model.keras").read_bytes())
    three = tmp_path / "three.yaml"  # the detector's data with a third class name
    config = yaml.safe_load(det_data.read_text())
    config["path"] = str(det_data.parent)
    config["names"] = {**config["names"], 2: "extra"}
    three.write_text(yaml.safe_dump(config))
    names = {
        "MODEL": str(trained_detector / "model.keras"),
        "NOSPEC": str(nospec),
        "CLS": str(cls_data),
        "THREE": str(three),
    }
    argv = [names.get(a, a) for a in args]
    if "--data" not in argv:
        argv += ["--data", str(det_data)]
    proc = subprocess.run([sys.executable, "-m", "edgecnn", "eval", *argv], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    # TensorFlow's C++ runtime logs a banner on import that no setting silences; ours is one line.
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgecnn: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "classes", "spec_of", "message"),
    [
        (
            "lenet_test",
            3,
            ("lenet_test", 3, 32),
            r"the model input is \(28, 28, 1\) \(H, W, C\) but spec.json says \(32, 32, 1\)",
        ),
        (
            "lenet_test",
            3,
            ("lenet_test", 5, 28),
            r"output channels \[3\] do not fit spec.json, which needs \[5\] for its 5 labels$",
        ),
        (
            "tiny_yolo_v3_test",
            2,
            ("tiny_yolo_v3_test", 3, 64),
            r"output channels \[21, 21\] do not fit spec.json, which needs \[24, 24\]",
        ),
    ],
)
def test_a_keras_model_with_another_runs_spec_is_one_clear_error(
    name: str, classes: int, spec_of: tuple[str, int, int], message: str, tmp_path: Path
) -> None:
    # A model.keras copied next to another run's spec.json: before, `eval` crashed inside
    # Keras (input size) or scored a 3-class model's outputs against 5 labels without a word.
    from edgecnn.architectures import build_model, get_model_info
    from edgecnn.errors import ModelError
    from edgecnn.evaluation import load_predictor

    build_model(name, num_classes=classes).save(tmp_path / "model.keras")
    other, n, size = spec_of
    spec = get_model_info(other).model_spec([f"c{i}" for i in range(n)], input_size=size)
    spec.save(tmp_path / "spec.json")
    with pytest.raises(ModelError, match=message):
        load_predictor(tmp_path / "model.keras")
