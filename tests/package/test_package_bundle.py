"""``edgecnn package``: the archive, its manifest, the config it ships, and its refusals."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import tinymodels
import yaml
from typer.testing import CliRunner

import edgecnn.cli.package_cmd  # noqa: F401  registers the command before the app is used
from edgecnn.cli.app import app
from edgecnn.errors import ConfigError
from edgecnn.package.bundle import BundleResult, adjust_config, package_model
from edgecnn.package.install import canonical_json, manifest_digest, verify_bundle
from edgecnn.package.manifest import BOARD_MODEL_PATH, read_bundle_manifest
from edgecnn.package.wheelhouse import SOURCE_DATE_EPOCH, Target

runner = CliRunner()
pytestmark = [pytest.mark.tf, pytest.mark.slow]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_archive_layout_is_reproducible_tar(bundles: dict[str, BundleResult]) -> None:
    result = bundles["arm64"]
    top = f"tiny_det-{result.manifest['version']}-arm64"
    assert result.path.name == f"{top}.tar.gz"
    with tarfile.open(result.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and all(n == top or n.startswith(top + "/") for n in names)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH))
    assert all(m.mtime == mtime and m.uid == 0 and m.gid == 0 and m.uname == "root" for m in members)
    files = {n[len(top) + 1 :]: m for n, m in zip(names, members, strict=True) if m.isfile()}
    for expected in ("install.py", "manifest.json", "model.tflite", "config/device.yaml", "requirements.txt"):
        assert expected in files
    assert "systemd/edgecnn-detect.service" in files and "README.txt" in files
    assert files["install.py"].mode == 0o755 and files["model.tflite"].mode == 0o644
    assert not any(m.issym() or m.islnk() for m in members)


def test_manifest_describes_bundle_target_and_model(
    bundles: dict[str, BundleResult], tiny_detector: Path, unpack: Callable[[Path], Path]
) -> None:
    result = bundles["arm64"]
    root = unpack(result.path)
    manifest = json.loads((root / "manifest.json").read_bytes())
    assert manifest == result.manifest == read_bundle_manifest(result.path)
    assert manifest["name"] == "tiny_det" and manifest["format"] == 1
    assert manifest["target"] == {
        "arch": "arm64",
        "machine": "aarch64",
        "python": "3.11",
        "runtime": "ai-edge-litert",
        "runtime_version": "2.3.0",
        "glibc": "2.36",
        "platforms": Target("arm64").platforms(),
    }
    model = manifest["model"]
    assert model["sha256"] == _sha(tiny_detector.read_bytes()) == _sha((root / "model.tflite").read_bytes())
    assert model["spec"] == tinymodels.DET_SPEC.model_dump(mode="json")
    assert model["input"]["width"] == 64 and model["input"]["color_order"] == "RGB"
    assert model["input"]["tensor"]["shape"] == [1, 64, 64, 3] and model["input"]["tensor"]["dtype"] == "int8"
    assert [(op["name"], op["builtin_code"], op["count"]) for op in model["ops"]] == [
        ("AVERAGE_POOL_2D", 1, 1),
        ("CONV_2D", 3, 3),
        ("MAX_POOL_2D", 17, 1),
    ]
    # sha256 of every file but the manifest, and of nothing else; the manifest seals itself.
    on_disk = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == set(on_disk) - {"manifest.json"}
    for rel, digest in manifest["files"].items():
        assert _sha(on_disk[rel].read_bytes()) == digest, rel
    assert manifest["manifest_sha256"] == manifest_digest(manifest)
    assert (root / "manifest.json").read_bytes() == canonical_json(manifest)
    assert verify_bundle(root) == manifest


def test_wheelhouse_is_complete_hash_pinned_and_board_only(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path]
) -> None:
    root = unpack(bundles["arm64"].path)
    wheels = sorted(p.name for p in (root / "wheels").iterdir())
    lines = [ln for ln in (root / "requirements.txt").read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == len(wheels)
    by_hash = {_sha((root / "wheels" / w).read_bytes()): w for w in wheels}
    for line in lines:
        pin, hash_option = line.split(" --hash=sha256:")
        name, version = pin.split("==")
        wheel = by_hash[hash_option]
        assert wheel.lower().replace("_", "-").startswith(f"{name}-{version}-".lower()), (line, wheel)
    assert any(w.startswith("edgecnn-") for w in wheels)
    assert any(w.startswith("ai_edge_litert-2.3.0-cp311-cp311-manylinux_2_27_aarch64") for w in wheels)
    assert not any(w.startswith(("tensorflow", "keras", "tflite_runtime")) for w in wheels)
    assert all(w.endswith(("-any.whl", "_aarch64.whl")) for w in wheels), wheels


def test_shipped_config_points_at_the_bundled_model(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path]
) -> None:
    root = unpack(bundles["arm64"].path)
    text = (root / "config/device.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["model"] == {"path": BOARD_MODEL_PATH, "num_threads": 2}
    assert "# the bundle points this at its own model" in text  # comments survive
    assert config["source"] == yaml.safe_load(tinymodels.DEVICE_CONFIG)["source"]


def test_default_config_is_the_example_adjusted(tiny_detector: Path, tmp_path: Path) -> None:
    result = package_model(tiny_detector, Target("x86_64"), out=tmp_path / "b.tar.gz", validate=False)
    with tarfile.open(result.path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("config/device.yaml"))
        text = tar.extractfile(member).read().decode()
    example = (Path(__file__).resolve().parents[2] / "deploy/config/device.example.yaml").read_text()
    assert yaml.safe_load(text)["model"]["path"] == BOARD_MODEL_PATH
    assert yaml.safe_load(text)["source"] == yaml.safe_load(example)["source"]


@pytest.mark.parametrize(
    "text",
    [
        "model: /a.tflite   # note\nsource: {type: opencv, input: 0}\n",
        "model:\n  path: /a.tflite\n  num_threads: 4\nsource: {type: opencv, input: 0}\n",
        "model:\n    num_threads: 4\nsource: {type: opencv, input: 0}\n",
        "source: {type: opencv, input: 0}\n",
        "model: {path: /a.tflite, num_threads: 4}\nsource: {type: opencv, input: 0}\n",
    ],
    ids=["scalar", "mapping", "mapping-without-path", "missing", "flow"],
)
def test_adjust_config_forms(text: str) -> None:
    adjusted = yaml.safe_load(adjust_config(text, "/opt/edgecnn/current/model.tflite"))
    model = adjusted["model"]
    assert (model["path"] if isinstance(model, dict) else model) == "/opt/edgecnn/current/model.tflite"
    assert adjusted["source"] == {"type": "opencv", "input": 0}
    if isinstance(yaml.safe_load(text).get("model"), dict):
        assert model["num_threads"] == 4
    with pytest.raises(ConfigError, match="expected a mapping"):
        adjust_config("- a\n- b\n")


def test_same_inputs_same_bytes(
    tiny_detector: Path, device_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    first = package_model(
        tiny_detector, Target("arm64"), out=tmp_path / "a/", config=device_config, validate=False
    )
    second = package_model(
        tiny_detector, Target("arm64"), out=tmp_path / "b/", config=device_config, validate=False
    )
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.manifest["created"] == "2026-01-01T00:00:00Z"


def _invoke(*args: str) -> object:
    return runner.invoke(app, ["package", *args], catch_exceptions=False)


def test_cli_packages_x86_64(tiny_detector: Path, device_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist" / "det.tar.gz"
    args = [str(tiny_detector), "--target", "x86_64", "--config", str(device_config), "--out", str(out)]
    result = _invoke(*args, "--name", "det", "--version", "1.2.3")
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout and "x86_64" in result.stdout
    manifest = read_bundle_manifest(out)
    assert (manifest["name"], manifest["version"], manifest["target"]["machine"]) == (
        "det",
        "1.2.3",
        "x86_64",
    )
    expected = "operators: AVERAGE_POOL_2D, CONV_2D, MAX_POOL_2D: all available in ai-edge-litert 2.3.0"
    assert expected in result.stderr


def test_cli_out_to_a_new_folder_writes_the_default_name_there(
    tiny_detector: Path, device_config: Path, tmp_path: Path
) -> None:
    """``--out dist/new/`` (a folder that does not exist yet) gets ``NAME-VERSION-ARCH.tar.gz``
    inside it, not a file called ``new``: Typer's ``Path`` drops the trailing slash."""
    args = [str(tiny_detector), "--target", "arm64", "--config", str(device_config)]
    result = _invoke(*args, "--version", "1.0", "--out", f"{tmp_path / 'new'}/")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new").is_dir(), "wrote a file instead of a folder"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["tiny_det-1.0-arm64.tar.gz"]
    result = _invoke(*args, "--version", "1.0", "--out", str(tmp_path / "plain"))  # no slash, no suffix
    assert result.exit_code == 0 and (tmp_path / "plain" / "tiny_det-1.0-arm64.tar.gz").is_file()


def test_cli_notes_a_model_that_is_not_quantised(
    tiny_detector: Path, device_config: Path, tmp_path: Path
) -> None:
    """A float model (quantising forgotten) packages and runs, but the operator is told."""
    tf = pytest.importorskip("tensorflow")
    from edgecnn.quantize.metadata_writer import write_spec

    image = tf.keras.Input((64, 64, 3))
    cells = tf.keras.layers.AveragePooling2D(8)(image)
    heads = [
        tf.keras.layers.Conv2D(14, 1)(cells),
        tf.keras.layers.Conv2D(14, 1)(tf.keras.layers.MaxPooling2D(2)(cells)),
    ]
    model = tmp_path / "float.tflite"
    model.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(image, heads)).convert())
    write_spec(model, tinymodels.DET_SPEC)
    args = ["--target", "x86_64", "--config", str(device_config), "--out", str(tmp_path / "dist")]
    result = _invoke(str(model), *args)
    assert result.exit_code == 0, result.output
    assert f"note: {model} is not quantised (no int8 tensors)" in result.stderr
    assert "not quantised" not in _invoke(str(tiny_detector), *args).stderr


def test_cli_refuses_custom_op_before_writing(flex_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tar.gz"
    result = _invoke(str(flex_model), "--out", str(out))
    assert result.exit_code == 2
    assert "FlexAdjustHue is a custom operator" in result.stderr and "ai-edge-litert 2.3.0" in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


_UNKNOWN = "unknown label {!r}; the model's labels: person, car"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("thresholds: {default: 0.4, truck: 0.6}\n", ":12: thresholds.truck: " + _UNKNOWN.format("truck")),
        ("iou: {default: 0.45, bus: 0.6}\n", ":12: iou.bus: " + _UNKNOWN.format("bus")),
        ("classes: [person, dog]\n", ":12: classes.1: " + _UNKNOWN.format("dog")),
        (
            "  - {type: http, port: 8081}\n  - {type: http, port: 8081}\n",
            ":13: sinks.2.port: port 8081 is taken by the http sink sinks.1",
        ),
        (
            "  - {type: jsonl, path: /var/lib/edgecnn/../edgecnn/detections.jsonl}\n",
            ":12: sinks.1.path: /var/lib/edgecnn/../edgecnn/detections.jsonl is also the output of "
            "sinks.0; refusing to write to it",
        ),
        (
            "  - {type: jsonl, path: /mnt/host/video.avi}\n",
            ":12: sinks.1.path: /mnt/host/video.avi is also the source file (source.input); "
            "refusing to write to it",
        ),
    ],
    ids=["thresholds", "iou", "classes", "same port", "same file", "the source"],
)
def test_cli_refuses_configs_the_service_would_exit_2_on(
    tiny_detector: Path, tmp_path: Path, extra: str, message: str
) -> None:
    # Labels the model lacks, sinks that collide: the service would exit 2 on the board with
    # this config, so package refuses it first (without the board's files).
    config = tmp_path / "device.yaml"
    config.write_text(tinymodels.DEVICE_CONFIG + extra)
    out = tmp_path / "dist"
    result = _invoke(str(tiny_detector), "--target", "x86_64", "--config", str(config), "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"edgecnn: error: {config}{message}"]
    assert not out.exists()


def test_cli_refuses_tflite_runtime_on_python_312(tiny_detector: Path, tmp_path: Path) -> None:
    result = _invoke(
        str(tiny_detector), "--runtime", "tflite-runtime", "--python", "3.12", "--out", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "tflite-runtime 2.14.0 has no wheels for Python 3.12" in result.stderr
    assert not list(tmp_path.iterdir())


def test_refusals_are_one_line_user_errors(tiny_detector: Path, tmp_path: Path) -> None:
    raw = tiny_detector.with_name("tiny_det_raw.tflite")  # the same model before its spec was embedded
    cases = {
        "no edgecnn or Ultralytics metadata: pass --task and --labels": [str(raw)],
        "no such file": [str(tmp_path / "missing.tflite")],
        "--glibc 'x'": [str(tiny_detector), "--glibc", "x"],
        "version '../x'": [str(tiny_detector), "--version", "../x"],
    }
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("model: {path: /m.tflite}\nsource: {type: opencv, input: 0}\nmax_det: 0\n")
    cases["bad.yaml:3: max_det"] = [str(tiny_detector), "--config", str(bad_config)]
    for message, args in cases.items():
        result = _invoke(*args, "--out", str(tmp_path / "out/"))
        assert result.exit_code == 2, (message, result.output)
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("edgecnn: error: ")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_refuses_bad_inputs_and_outputs_in_one_line(tiny_detector: Path, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: {path: x\nsource: [\n")
    not_a_wheel = tmp_path / "edgecnn-0.1-py3-none-any.whl"
    not_a_wheel.write_text("hi")
    other_wheel = tmp_path / "requests-2.0-py3-none-any.whl"
    with zipfile.ZipFile(other_wheel, "w") as archive:
        archive.writestr("requests/__init__.py", "")
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_detector.read_bytes())
    cases = [
        (["--config", str(bad_yaml)], f"{bad_yaml}:2: invalid YAML: expected ',' or '}}', but got ':'"),
        (["--edgecnn-wheel", str(tmp_path / "w.txt")], "--edgecnn-wheel"),
        (["--edgecnn-wheel", str(not_a_wheel)], "not a wheel (not a zip archive)"),
        (["--edgecnn-wheel", str(other_wheel)], "a wheel of 'requests', not of edgecnn"),
        (["--out", str(model)], "it is an input of this command"),
    ]
    for args, message in cases:
        result = _invoke(str(model), "--target", "x86_64", *args)
        assert result.exit_code == 2, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("edgecnn: error:")]
        assert errors == result.stderr.strip().splitlines()[-1:], (args, result.stderr)
        assert message in errors[0], (args, result.stderr)
    assert model.read_bytes() == tiny_detector.read_bytes()
