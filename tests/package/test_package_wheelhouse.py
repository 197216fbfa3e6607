"""The board's wheels: target tags, pins, the cross-platform download and its cache."""

from __future__ import annotations

import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename

from edgecnn.errors import UserError
from edgecnn.package import wheelhouse
from edgecnn.package.wheelhouse import (
    PROFILES,
    Target,
    build_edgecnn_wheel,
    fetch_wheels,
    pip_download_command,
    requirements_txt,
    sha256_file,
)

ROOT = Path(__file__).resolve().parents[2]


def test_arm64_platform_tags_span_the_board_glibc() -> None:
    tags = Target("arm64", glibc=(2, 36)).platforms()
    assert tags[0] == "manylinux_2_36_aarch64" and "manylinux_2_27_aarch64" in tags
    assert tags[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("x86_64" in t for t in tags)
    assert Target("x86_64").platforms()[0] == "manylinux_2_36_x86_64"


def test_pip_download_command_is_cross_platform_binary_only(tmp_path: Path) -> None:
    command = pip_download_command(Target("arm64", python="3.12"), tmp_path)
    assert command[command.index("download") - 1 :][:1] == ["pip"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--implementation") + 1] == "cp"
    abis = [command[i + 1] for i, word in enumerate(command) if word == "--abi"]
    assert abis == ["cp312", "abi3", "none"]
    platforms = [command[i + 1] for i, word in enumerate(command) if word == "--platform"]
    assert platforms == Target("arm64", python="3.12").platforms()
    assert command[-len(Target().requirements()) :][0] == "ai-edge-litert==2.3.0"


def test_tflite_runtime_only_up_to_python_311() -> None:
    Target("arm64", python="3.11", runtime="tflite-runtime").check()
    with pytest.raises(
        UserError, match=r"tflite-runtime 2\.14\.0 has no wheels for Python 3\.12.*--python 3\.11"
    ):
        Target("arm64", python="3.12", runtime="tflite-runtime").check()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (Target("riscv64"), "unknown target 'riscv64'"),
        (Target(runtime="onnxruntime"), "unknown runtime 'onnxruntime'"),
        (Target(python="3.9"), r"no wheels for Python 3\.9"),
        (Target(python="three"), "expected a CPython version"),
        (Target(runtime="tflite-runtime", glibc=(2, 31)), r"needs glibc 2\.34 on arm64"),
    ],
)
def test_bad_targets_are_user_errors(target: Target, message: str) -> None:
    with pytest.raises(UserError, match=message):
        target.check()


def test_pins_satisfy_edgecnn_requirements() -> None:
    """The pinned versions are ones edgecnn itself accepts (pyproject's dependencies)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for r in project["optional-dependencies"]["mqtt"]]
    for release in PROFILES.values():
        pins = {
            name: version
            for name, version in (r.split("==") for r in Target(runtime=release.name).requirements())
        }
        for requirement in requirements:
            assert requirement.name in pins, f"{requirement.name} is not shipped to the board"
            assert requirement.specifier.contains(pins[requirement.name]), (release.name, str(requirement))
        assert "tensorflow" not in pins
    litert = Requirement(project["optional-dependencies"]["device"][0])
    assert litert.specifier.contains(PROFILES["ai-edge-litert"].version)


def test_requirements_txt_pins_every_wheel_with_its_hash() -> None:
    wheels = [
        wheelhouse.Wheel("numpy-2.4.6-cp311-cp311-x.whl", "numpy", "2.4.6", "a" * 64),
        wheelhouse.Wheel("PyYAML-6.0.4-cp311-cp311-x.whl", "pyyaml", "6.0.4", "b" * 64),
    ]
    lines = requirements_txt(wheels).splitlines()
    assert lines[1:] == [f"numpy==2.4.6 --hash=sha256:{'a' * 64}", f"pyyaml==6.0.4 --hash=sha256:{'b' * 64}"]


def _assert_fits(target: Target, filename: str) -> None:
    name, _, _, tags = parse_wheel_filename(filename)
    platforms = {*target.platforms(), "any"}
    assert any(t.platform in platforms and t.abi in (target.abi, "abi3", "none") for t in tags), filename
    assert name not in ("tensorflow", "tensorflow-cpu", "keras"), filename


@pytest.mark.slow
def test_download_cold_then_warm_then_repair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """arm64 wheels from PyPI into an empty cache; again with no network at all; a damaged
    cached file is noticed and fetched again."""
    target = Target("arm64")
    lines: list[str] = []
    cold = fetch_wheels(target, tmp_path, log=lines.append)
    assert not cold.from_cache
    names = {w.name for w in cold.wheels}
    assert {
        "ai-edge-litert",
        "numpy",
        "opencv-python-headless",
        "pydantic",
        "pydantic-core",
        "pyyaml",
    } <= names
    assert {"typer", "rich", "paho-mqtt"} <= names
    for wheel, path in zip(cold.wheels, cold.paths(), strict=True):
        _assert_fits(target, wheel.filename)
        assert sha256_file(path) == wheel.sha256
    assert any("downloaded" in line for line in lines)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a warm cache must not run pip")

    monkeypatch.setattr(subprocess, "Popen", no_network)
    warm = fetch_wheels(target, tmp_path)
    assert warm.from_cache and warm.wheels == cold.wheels
    monkeypatch.undo()

    damaged = tmp_path / "files" / next(w.filename for w in cold.wheels if w.name == "pyyaml")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    again = fetch_wheels(target, tmp_path)
    assert not again.from_cache and again.wheels == cold.wheels


@pytest.mark.slow
def test_edgecnn_wheel_is_reproducible_and_complete(tmp_path: Path) -> None:
    """Built twice in separate caches: the same bytes; it holds every file of the package."""
    first = build_edgecnn_wheel(tmp_path / "a")
    second = build_edgecnn_wheel(tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    assert build_edgecnn_wheel(tmp_path / "a") == first  # cached by content
    with zipfile.ZipFile(first) as wheel:
        shipped = set(wheel.namelist())
    package = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "edgecnn").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    missing = sorted(set(package) - shipped)
    assert not missing, f"files of the edgecnn package missing from its wheel (package-data?): {missing}"
