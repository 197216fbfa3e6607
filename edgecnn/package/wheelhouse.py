"""The board's Python dependencies as wheels for its CPU and Python, fetched on the workstation.

The board installs offline: ``pip install --no-index --find-links wheels --require-hashes -r
requirements.txt``. So the workstation downloads, for the *board's* platform, every wheel the
board-side code needs (never TensorFlow): the TFLite runtime, numpy, OpenCV (headless),
pydantic, PyYAML, Typer and paho-mqtt, plus their dependencies, with pip's cross-platform
download (``--platform``, ``--python-version``, ``--implementation``, ``--abi``,
``--only-binary=:all:``). edgecnn's own wheel is built from the source tree.

Versions are pinned per runtime in :data:`PROFILES` (every pin has aarch64 and x86_64 wheels
for CPython 3.11-3.13); pip resolves the transitive dependencies once, and the result (file
names and sha256) is cached with the wheels in ``~/.cache/edgecnn/wheels`` (override:
``EDGECNN_CACHE``). A warm cache needs no network and gives the same files again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import edgecnn
from edgecnn.digest import sha256_file
from edgecnn.errors import EdgecnnError, UserError

#: Called with one line of progress text per step (the CLI prints them on stderr).
Log = Callable[[str], None]

ARCHES = {"arm64": "aarch64", "x86_64": "x86_64"}
#: Debian 12 (Bookworm) and Raspberry Pi OS Bookworm ship glibc 2.36.
DEFAULT_GLIBC = (2, 36)
#: manylinux_2_17 is the oldest tag the pinned wheels use (manylinux2014 is its alias).
_OLDEST_GLIBC_MINOR = 17
#: Fixed timestamp (1980-01-01, the earliest a zip can hold) for reproducible wheels and tars.
SOURCE_DATE_EPOCH = 315532800


@dataclass(frozen=True)
class RuntimeRelease:
    """A TFLite interpreter package release and where its wheels exist on PyPI."""

    name: str
    version: str
    pythons: tuple[str, ...]  # CPython versions with wheels (and that edgecnn supports)
    min_glibc: dict[str, tuple[int, int]]  # per machine: the manylinux tag of its wheel
    pins: dict[str, str]  # the rest of the board's top-level requirements, exact versions


_COMMON_PINS = {
    "pydantic": "2.14.4",
    "pyyaml": "6.0.4",
    "typer": "0.29.2",
    "paho-mqtt": "2.2.0",
}

#: Board runtime -> the release pinned and the versions pinned with it.
PROFILES: dict[str, RuntimeRelease] = {
    "ai-edge-litert": RuntimeRelease(
        name="ai-edge-litert",
        version="2.3.0",
        pythons=("3.11", "3.12", "3.13"),
        min_glibc={"aarch64": (2, 27), "x86_64": (2, 27)},
        pins={"numpy": "2.4.6", "opencv-python-headless": "5.0.0.93", **_COMMON_PINS},
    ),
    # tflite-runtime 2.14 (2023, the last release) is built against the NumPy 1 ABI: it needs
    # numpy < 2, and so an OpenCV release that still accepts numpy 1.
    "tflite-runtime": RuntimeRelease(
        name="tflite-runtime",
        version="2.14.0",
        pythons=("3.11",),
        min_glibc={"aarch64": (2, 34), "x86_64": (2, 17)},
        pins={"numpy": "1.26.4", "opencv-python-headless": "4.11.0.86", **_COMMON_PINS},
    ),
}


@dataclass(frozen=True)
class Target:
    """The board a bundle is for: CPU, Python, TFLite runtime and glibc.

    Args:
        arch: ``arm64`` (Raspberry Pi 4/5 with a 64-bit OS) or ``x86_64``.
        python: the board's CPython ``major.minor``.
        runtime: ``ai-edge-litert`` or ``tflite-runtime``.
        glibc: the board's glibc version (decides which manylinux wheels it can use).
    """

    arch: str = "arm64"
    python: str = "3.11"
    runtime: str = "ai-edge-litert"
    glibc: tuple[int, int] = DEFAULT_GLIBC

    @property
    def machine(self) -> str:
        """``uname -m`` of the board: ``aarch64`` or ``x86_64``."""
        return ARCHES[self.arch]

    @property
    def release(self) -> RuntimeRelease:
        """The pinned runtime release."""
        return PROFILES[self.runtime]

    @property
    def abi(self) -> str:
        """The CPython ABI tag, e.g. ``cp311``."""
        return "cp" + self.python.replace(".", "")

    def check(self) -> None:
        """Raise :class:`UserError` unless wheels exist for this combination."""
        if self.arch not in ARCHES:
            raise UserError(f"unknown target {self.arch!r}: expected one of {', '.join(ARCHES)}")
        if self.runtime not in PROFILES:
            raise UserError(f"unknown runtime {self.runtime!r}: expected one of {', '.join(PROFILES)}")
        if not re.fullmatch(r"3\.\d+", self.python):
            raise UserError(f"--python {self.python!r}: expected a CPython version like 3.11")
        release = self.release
        if self.python not in release.pythons:
            hint = " or --runtime ai-edge-litert" if self.runtime == "tflite-runtime" else ""
            raise UserError(
                f"{release.name} {release.version} has no wheels for Python {self.python} "
                f"(it has {', '.join(release.pythons)}): use --python {release.pythons[-1]}{hint}"
            )
        need = release.min_glibc[self.machine]
        if self.glibc < need:
            raise UserError(
                f"{release.name} {release.version} needs glibc {need[0]}.{need[1]} on {self.arch}; "
                f"the target has {self.glibc[0]}.{self.glibc[1]}"
            )

    def platforms(self) -> list[str]:
        """Every manylinux platform tag the board accepts, newest first (pip's ``--platform``)."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, _OLDEST_GLIBC_MINOR - 1, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    def requirements(self) -> list[str]:
        """The board's top-level requirements, exact pins (the runtime first)."""
        release = self.release
        pins = {release.name: release.version, **release.pins}
        return [f"{name}=={version}" for name, version in pins.items()]

    def describe(self) -> str:
        """``arm64 (aarch64), CPython 3.11, ai-edge-litert 2.3.0, glibc >= 2.36``."""
        r = self.release
        return (
            f"{self.arch} ({self.machine}), CPython {self.python}, {r.name} {r.version}, "
            f"glibc {self.glibc[0]}.{self.glibc[1]}"
        )


@dataclass(frozen=True)
class Wheel:
    """A wheel file: its file name, normalised project name, version and sha256."""

    filename: str
    name: str
    version: str
    sha256: str

    @classmethod
    def from_file(cls, path: Path) -> Wheel:
        """Read name and version from the file name and hash the content."""
        name, version = parse_wheel_name(path.name)
        return cls(path.name, name, version, sha256_file(path))


@dataclass
class Wheelhouse:
    """The wheels for one target, all in ``directory``."""

    target: Target
    directory: Path
    wheels: list[Wheel]
    from_cache: bool
    seconds: float
    requirements: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        """The wheel files."""
        return [self.directory / w.filename for w in self.wheels]


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name (``PyYAML`` -> ``pyyaml``, ``pydantic_core`` -> ``pydantic-core``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(filename: str) -> tuple[str, str]:
    """``(normalised name, version)`` of a wheel file name.

    Raises:
        EdgecnnError: not a wheel file name.
    """
    parts = filename.removesuffix(".whl").split("-")
    if not filename.endswith(".whl") or len(parts) not in (5, 6):
        raise EdgecnnError(f"{filename}: not a wheel file name")
    return normalize_name(parts[0]), parts[1]


def default_cache_dir() -> Path:
    """The wheel cache: ``$EDGECNN_CACHE/wheels``, else ``$XDG_CACHE_HOME/edgecnn/wheels``, else
    ``~/.cache/edgecnn/wheels``."""
    if os.environ.get("EDGECNN_CACHE"):
        return Path(os.environ["EDGECNN_CACHE"]) / "wheels"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecnn" / "wheels"


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache (two package runs must not mix their downloads)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, document: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _set_key(target: Target) -> str:
    document = {
        "machine": target.machine,
        "python": target.python,
        "platforms": target.platforms(),
        "requirements": target.requirements(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def _cached_set(cache: Path, key: str) -> list[Wheel] | None:
    """The wheels of a cached resolution, if every file is still there with its hash."""
    path = cache / "sets" / f"{key}.json"
    if not path.is_file():
        return None
    try:
        wheels = [Wheel(**w) for w in json.loads(path.read_text())["wheels"]]
    except (ValueError, KeyError, TypeError):
        return None
    for wheel in wheels:
        file = cache / "files" / wheel.filename
        if not file.is_file() or sha256_file(file) != wheel.sha256:
            return None
    return wheels


def pip_download_command(target: Target, dest: Path) -> list[str]:
    """The ``pip download`` command line that fetches the target's wheels into ``dest``."""
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(dest)]
    command += ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python]
    for abi in (target.abi, "abi3", "none"):
        command += ["--abi", abi]
    for platform in target.platforms():
        command += ["--platform", platform]
    return command + target.requirements()


def _run_pip(command: list[str], what: str, log: Log, env: dict[str, str] | None = None) -> None:
    """Run pip, passing its "Collecting"/"Downloading" lines to ``log``; one-line error on failure."""
    env = {**os.environ, "PIP_PROGRESS_BAR": "off", "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith(("Collecting ", "Downloading ", "  Downloading ", "Saved ", "Building wheel")):
            log("  " + line.strip())
        if line and "is ignored: it is neither a file nor a directory" not in line:
            tail = [*tail[-5:], line]
    if proc.wait() != 0:
        errors = [t for t in tail if "ERROR" in t] or tail
        raise EdgecnnError(f"{what} failed: {' | '.join(errors[-3:]) or f'pip exit code {proc.returncode}'}")


def fetch_wheels(
    target: Target,
    cache_dir: Path | None = None,
    refresh: bool = False,
    log: Log | None = None,
) -> Wheelhouse:
    """Get the wheels of the target's board-side requirements, from the cache or from PyPI.

    Args:
        target: the board.
        cache_dir: the wheel cache (default :func:`default_cache_dir`).
        refresh: resolve and download again even if the cache has this set.
        log: progress lines.

    Returns:
        A :class:`Wheelhouse` whose ``directory`` is the cache's file store: copy the listed
        wheels from it, do not use the directory as a whole.

    Raises:
        UserError: the target has no wheels (see :meth:`Target.check`).
        EdgecnnError: pip cannot resolve or download them.
    """
    target.check()
    log = log or (lambda line: None)
    cache = cache_dir or default_cache_dir()
    key = _set_key(target)
    started = time.perf_counter()
    with _locked(cache):
        store = cache / "files"
        wheels = None if refresh else _cached_set(cache, key)
        if wheels is not None:
            log(f"wheels for {target.describe()}: {len(wheels)} from the cache {cache}")
            return Wheelhouse(
                target, store, wheels, True, time.perf_counter() - started, target.requirements()
            )
        log(f"downloading wheels for {target.describe()} (pip, cross-platform)")
        store.mkdir(parents=True, exist_ok=True)
        (cache / "sets").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix="download-") as tmp:
            _run_pip(pip_download_command(target, Path(tmp)), "pip download", log)
            files = sorted(Path(tmp).glob("*.whl"))
            if not files:
                raise EdgecnnError("pip download saved no wheels")
            wheels = []
            for file in files:
                wheels.append(Wheel.from_file(file))
                os.replace(file, store / file.name)
        wheels.sort(key=lambda w: w.name)
        _write_json(
            cache / "sets" / f"{key}.json",
            {
                "target": asdict(target),
                "requirements": target.requirements(),
                "wheels": [asdict(w) for w in wheels],
            },
        )
        seconds = time.perf_counter() - started
        size = sum((store / w.filename).stat().st_size for w in wheels)
        log(f"downloaded {len(wheels)} wheels ({size / 1e6:.1f} MB) in {seconds:.1f} s")
        return Wheelhouse(target, store, wheels, False, seconds, target.requirements())


def source_tree() -> Path | None:
    """The edgecnn source tree this package was imported from (an editable install), if any."""
    root = Path(edgecnn.__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'(?m)^name\s*=\s*"edgecnn"', pyproject.read_text()):
        return root
    return None


def _copy_source(root: Path, dest: Path) -> str:
    """Copy what the wheel is built from into ``dest``; return a hash of it (the wheel's cache key)."""
    digest = hashlib.sha256()
    names = ["pyproject.toml", "README.md", *sorted(p.name for p in root.glob("LICEN[CS]E*"))]
    files = [root / n for n in names if (root / n).is_file()]
    files += sorted(
        p
        for p in (root / "edgecnn").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    for file in files:
        rel = file.relative_to(root)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
        digest.update(str(rel).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_edgecnn_wheel(
    cache_dir: Path | None = None, source: Path | None = None, log: Log | None = None
) -> Path:
    """Build edgecnn's wheel from its source tree (``pip wheel --no-deps``), cached by content.

    The tree is copied to a temporary directory first, so the build leaves nothing in it.
    ``SOURCE_DATE_EPOCH`` is fixed, so the same source gives the same wheel bytes.

    Args:
        cache_dir: the wheel cache (default :func:`default_cache_dir`).
        source: the source tree (default :func:`source_tree`).
        log: progress lines.

    Returns:
        The path of the wheel, inside the cache.

    Raises:
        UserError: edgecnn is not installed from a source tree.
        EdgecnnError: the build fails.
    """
    log = log or (lambda line: None)
    root = source or source_tree()
    if root is None:
        raise UserError(
            "edgecnn is not installed from a source tree, so its wheel cannot be built: "
            "pass --edgecnn-wheel with a built wheel"
        )
    cache = cache_dir or default_cache_dir()
    with _locked(cache), tempfile.TemporaryDirectory(prefix="edgecnn-src-") as tmp:
        key = _copy_source(root, Path(tmp) / "src")
        out = cache / "edgecnn" / key
        built = sorted(out.glob("edgecnn-*.whl")) if out.is_dir() else []
        if built:
            log(f"edgecnn wheel from the cache: {built[0].name}")
            return built[0]
        log(f"building the edgecnn wheel from {root}")
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"]
        command += ["--wheel-dir", str(Path(tmp) / "dist"), str(Path(tmp) / "src")]
        _run_pip(command, "pip wheel", log, {"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)})
        wheels = sorted((Path(tmp) / "dist").glob("edgecnn-*.whl"))
        if len(wheels) != 1:
            raise EdgecnnError(f"pip wheel built {len(wheels)} edgecnn wheels, expected 1")
        out.mkdir(parents=True, exist_ok=True)
        final = out / wheels[0].name
        shutil.move(str(wheels[0]), final)
        return final


def requirements_txt(wheels: list[Wheel]) -> str:
    """A requirements file pinning every wheel by version and sha256 (for ``--require-hashes``)."""
    lines = [
        "# Installed offline: pip install --no-index --find-links wheels --require-hashes -r requirements.txt"
    ]
    for wheel in sorted(wheels, key=lambda w: w.name):
        lines.append(f"{wheel.name}=={wheel.version} --hash=sha256:{wheel.sha256}")
    return "\n".join(lines) + "\n"
