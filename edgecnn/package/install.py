#!/usr/bin/env python3
"""Install an edgecnn bundle on the board: verify everything, then lay out a release and switch to it.

Every bundle ships this file as ``install.py``; run it from the unpacked bundle, as root::

    tar xzf model-0.1.0-abc-arm64.tar.gz && cd model-0.1.0-abc-arm64
    sudo python3 install.py [--enable] [--start]

It uses the standard library only: it runs with the board's system Python, before any venv
exists (and keeps to Python 3.9 syntax, for older boards).

1. **Verify, before changing anything.** ``manifest.json`` must be in canonical form and match
   its own ``manifest_sha256``; every other file of the bundle must be listed in it with its
   sha256 and match, and no file may be missing or extra. The board's CPU (``uname -m``) and
   Python must be the bundle's target. Any mismatch: exit 1, nothing touched.
2. **Release** ``/opt/edgecnn/releases/<version>``: model, manifest, config and unit copies,
   and a venv created offline from the bundle's wheels with ``pip install --no-index
   --find-links wheels --require-hashes -r requirements.txt``. Then the release is checked
   (``edgecnn --version``, and the model loaded and run once in the board's interpreter) and
   marked complete. A release directory without that mark is a failed attempt: redone.
3. **System**: a system user ``edgecnn`` (group ``edgecnn``, supplementary group ``video``),
   ``/etc/edgecnn/device.yaml`` (replaced only if nobody edited the one installed before,
   like dpkg's conffiles; otherwise the new one is written next to it as ``device.yaml.dist``),
   the systemd unit, ``systemctl daemon-reload``.
4. **Switch**: the ``/opt/edgecnn/current`` symlink is replaced atomically (rename) to point at
   the new release (``/opt/edgecnn/previous`` then names the release it pointed at before);
   ``--enable`` / ``--start`` then enable and (re)start the service.

When a complete release already on the board has a byte-identical ``requirements.txt`` (the
same wheels, pinned by the same hashes), its venv's packages are copied instead of installed
again, and every copied file is checked against the sha256 its package's ``RECORD`` holds
(pip wrote it at install time; byte code has none); anything amiss falls back to a full install.

Releases already installed (``edgecnn deploy`` uses these; any bundle's installer can run them)::

    sudo python3 install.py --list                       # the releases, as JSON
    sudo python3 install.py --no-switch                  # build and check only (1. and 2.)
    sudo python3 install.py --switch-to VERSION          # then 3. and 4.; rollback: previous
    sudo python3 install.py --switch-to previous         # rollback: link, config and unit
    sudo python3 install.py --switch-to V --previous P   # and previous -> P ('' removes it)
    sudo python3 install.py --prune --keep 3             # keep 3 releases (never current, previous)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import fcntl
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INSTALLER = "install.py"
MODEL = "model.tflite"
CONFIG = "config/device.yaml"
UNIT = "systemd/edgecnn-detect.service"
WHEELS = "wheels"
REQUIREMENTS = "requirements.txt"
#: The bundle's files a release keeps a copy of (besides the venv).
RELEASE_COPIES = (MODEL, MANIFEST, REQUIREMENTS, CONFIG, UNIT)
COMPLETE_MARK = ".installed"
PREVIOUS = "previous"
SERVICE_USER = "edgecnn"
DEFAULT_PREFIX = Path("/opt/edgecnn")
#: A new venv's own files (pip, the interpreter links) besides the wheels' packages.
VENV_BASE_BYTES = 20_000_000


class BundleError(Exception):
    """The bundle is damaged or does not fit this board, or a step failed; one line."""


def canonical_json(document: dict) -> bytes:
    """The one byte form a manifest may have: sorted keys, indent 2, ASCII, trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def manifest_digest(document: dict) -> str:
    """sha256 of the canonical manifest with its ``manifest_sha256`` field empty."""
    return hashlib.sha256(canonical_json({**document, "manifest_sha256": ""})).hexdigest()


def seal_manifest(document: dict) -> bytes:
    """The bytes of ``manifest.json``: ``document`` with its own digest filled in."""
    return canonical_json({**document, "manifest_sha256": manifest_digest(document)})


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(root: Path) -> dict[str, Path]:
    """Every entry below ``root`` by its ``/``-separated relative path (directories left out).

    Raises:
        BundleError: an entry is a symlink or neither a file nor a directory.
    """
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise BundleError(f"{rel}: is a symlink; bundles hold regular files only")
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise BundleError(f"{rel}: not a regular file")
        found[rel] = path
    return found


def read_manifest(root: Path) -> dict:
    """Load ``manifest.json`` and check its form and its own digest.

    Raises:
        BundleError: missing, not canonical JSON, or its digest does not match.
    """
    path = root / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{root}: no {MANIFEST}; is this an unpacked edgecnn bundle?") from None
    try:
        document = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{MANIFEST}: damaged (not valid JSON: {exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise BundleError(f"{MANIFEST}: damaged (no file list)")
    if raw != canonical_json(document):
        raise BundleError(f"{MANIFEST}: damaged (not in the canonical form it was written in)")
    expected = document.get("manifest_sha256")
    if expected != manifest_digest(document):
        raise BundleError(f"{MANIFEST}: sha256 mismatch (the manifest was changed after it was sealed)")
    if document.get("format") != FORMAT_VERSION:
        raise BundleError(f"{MANIFEST}: bundle format {document.get('format')!r}; this installer reads 1")
    return document


def verify_bundle(root: Path) -> dict:
    """Check every byte of an unpacked bundle against its manifest; return the manifest.

    Raises:
        BundleError: naming the first file that is damaged, missing or not listed.
    """
    manifest = read_manifest(root)
    listed: dict = manifest["files"]
    present = bundle_files(root)
    present.pop(MANIFEST)
    for rel in sorted(set(present) - set(listed)):
        raise BundleError(f"{rel}: not listed in {MANIFEST} (a file was added to the bundle)")
    for rel in sorted(listed):
        if rel not in present:
            raise BundleError(f"{rel}: missing from the bundle")
        actual = sha256_file(present[rel])
        if actual != listed[rel]:
            raise BundleError(
                f"{rel}: sha256 mismatch (expected {listed[rel][:16]}..., got {actual[:16]}...)"
            )
    return manifest


def clean_env() -> dict:
    """This environment without the variables that would make Python or pip look elsewhere
    (``PYTHONPATH`` could make pip think a package is already installed)."""
    drop = ("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA", "__PYVENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def interpreter_version(python: str) -> str:
    """``major.minor`` of a Python interpreter."""
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            env=clean_env(),
        )
    except OSError:
        raise BundleError(f"{python}: cannot run it to read its version") from None
    if result.returncode != 0:
        raise BundleError(f"{python}: cannot run it to read its version")
    return result.stdout.strip()


def check_board(manifest: dict, python: str) -> None:
    """The board's CPU and Python must be the bundle's target.

    Raises:
        BundleError: naming what differs.
    """
    target = manifest["target"]
    machine = platform.machine()
    if machine != target["machine"]:
        raise BundleError(
            f"this bundle is for {target['machine']} ({target['arch']}); this machine is {machine}"
        )
    version = interpreter_version(python)
    if version != target["python"]:
        raise BundleError(
            f"this bundle's wheels are for Python {target['python']}; {python} is Python {version} "
            "(pass --python with a matching interpreter)"
        )


class Installer:
    """One installation of an unpacked, verified bundle.

    Args:
        bundle: the unpacked bundle directory.
        manifest: its verified manifest.
        prefix: where releases live (``/opt/edgecnn``).
        etc: the config directory (``/etc/edgecnn``).
        unit_dir: where the unit goes (``/etc/systemd/system``).
        python: the interpreter the venv is made from.
        manage_user: create the ``edgecnn`` user.
        systemd: install the unit and talk to systemd.
        log: called with each progress line.
    """

    def __init__(
        self,
        bundle: Path,
        manifest: dict,
        prefix: Path,
        etc: Path,
        unit_dir: Path,
        python: str,
        manage_user: bool = True,
        systemd: bool = True,
        log: Callable[[str], object] = print,
    ) -> None:
        self.bundle = bundle
        self.manifest = manifest
        self.prefix = prefix
        self.etc = etc
        self.unit_dir = unit_dir
        self.python = python
        self.manage_user = manage_user
        self.systemd = systemd
        self.log = log
        self.version = manifest["version"]
        self.release = prefix / "releases" / self.version
        self.timings: dict[str, float] = {}
        #: the release whose packages the venv was copied from, if any
        self.reused_from: str | None = None

    def _run(self, command: list, what: str) -> str:
        try:
            result = subprocess.run(
                [str(c) for c in command], capture_output=True, text=True, check=False, env=clean_env()
            )
        except OSError as exc:
            raise BundleError(f"{what} failed: {exc}") from None
        if result.returncode != 0:
            # The error is on stderr (pip: "ERROR: ... No space left on device"); stdout only
            # says what was being done. Fall back to stdout when stderr is empty.
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            lines = lines or [ln for ln in result.stdout.splitlines() if ln.strip()]
            detail = " | ".join(lines[-3:]) or f"exit code {result.returncode}"
            raise BundleError(f"{what} failed: {detail}")
        return result.stdout

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 2)

    def release_state(self, force: bool) -> str:
        """``new``, ``same`` (this bundle is already installed there) or raise if another is."""
        mark = self.release / COMPLETE_MARK
        if not mark.is_file():
            return "new"
        if mark.read_text().strip() == self.manifest["manifest_sha256"]:
            return "same"
        if force:
            return "new"
        raise BundleError(
            f"{self.release} holds another bundle of version {self.version}: "
            "package with another --version, or pass --force to replace it"
        )

    def build_release(self) -> None:
        """Copy the bundle's files and create the venv offline; mark the release complete."""
        if self.release.exists():
            self.log(f"removing an incomplete or replaced release {self.release}")
            shutil.rmtree(self.release)
        self.release.mkdir(parents=True, mode=0o755)
        os.chmod(self.release, 0o755)
        try:
            for rel in RELEASE_COPIES:
                dest = self.release / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.bundle / rel, dest)
                # The config may hold secrets (an MQTT password): only root reads the copy.
                os.chmod(dest, 0o600 if rel == CONFIG else 0o644)
            started = time.monotonic()
            donor = self.venv_donor()
            if donor is None or not self.reuse_venv(donor):
                self.create_venv()
            self._timed("venv", started)
            started = time.monotonic()
            self.check_release()
            self._timed("check", started)
            (self.release / COMPLETE_MARK).write_text(self.manifest["manifest_sha256"] + "\n")
        except BaseException:
            shutil.rmtree(self.release, ignore_errors=True)
            raise

    def create_venv(self) -> None:
        """A new venv filled offline from the bundle's wheels (``--require-hashes``)."""
        self.log("creating the venv")
        self._run([self.python, "-m", "venv", self.release / "venv"], "python -m venv")
        pip = [self.release / "venv/bin/python", "-m", "pip", "install", "--isolated", "--no-index"]
        pip += ["--find-links", self.bundle / WHEELS, "--require-hashes", "--only-binary", ":all:"]
        pip += ["--no-cache-dir", "--disable-pip-version-check", "-r", self.bundle / REQUIREMENTS]
        count = len(list((self.bundle / WHEELS).glob("*.whl")))
        self.log(f"installing {count} wheels offline (--require-hashes)")
        self._run(pip, "pip install")

    def venv_donor(self) -> Path | None:
        """The newest complete release whose ``requirements.txt`` is byte-identical to ours."""
        ours = (self.bundle / REQUIREMENTS).read_bytes()
        found = []
        for release in (self.prefix / "releases").glob("*"):
            mark = release / COMPLETE_MARK
            if release == self.release or not mark.is_file() or not (release / "venv/pyvenv.cfg").is_file():
                continue
            try:
                if (release / REQUIREMENTS).read_bytes() == ours:
                    found.append((mark.stat().st_mtime, release))
            except OSError:
                continue
        return max(found)[1] if found else None

    def reuse_venv(self, donor: Path) -> bool:
        """Fill a new venv with a copy of ``donor``'s packages, each file checked against its
        package's ``RECORD``; False (and no venv left) when anything does not match."""
        venv, old = self.release / "venv", donor / "venv"
        self.log(f"reusing the packages of release {donor.name} (same requirements.txt)")
        try:
            self._run([self.python, "-m", "venv", "--without-pip", venv], "python -m venv")
            if _pyvenv_base(venv) != _pyvenv_base(old):
                raise BundleError(f"{old} was made from another Python")
            new_site, old_site = _site_packages(venv), _site_packages(old)
            shutil.rmtree(new_site)
            shutil.copytree(old_site, new_site, symlinks=True)
            for script in sorted((old / "bin").iterdir()):
                dest = venv / "bin" / script.name
                if dest.exists() or dest.is_symlink() or script.is_symlink() or not script.is_file():
                    continue  # the new venv's own python links and activate scripts
                dest.write_bytes(script.read_bytes().replace(str(old).encode(), str(venv).encode()))
                os.chmod(dest, script.stat().st_mode & 0o777)
            checked = verify_site_packages(new_site, (self.bundle / REQUIREMENTS).read_text())
        except (BundleError, OSError) as exc:
            self.log(f"cannot reuse it ({exc}); installing the wheels")
            shutil.rmtree(venv, ignore_errors=True)
            return False
        self.log(f"{checked} files match the sha256 in their packages' RECORD")
        self.reused_from = donor.name
        return True

    def check_release(self) -> None:
        """The installed ``edgecnn`` runs, and loads and runs the model once in this board's runtime."""
        venv = self.release / "venv/bin"
        version = self._run([venv / "edgecnn", "--version"], "edgecnn --version").strip()
        self.log(f"checking the model in the board's interpreter ({version})")
        out = self._run([venv / "python", "-m", "edgecnn.runtime.probe", self.release / MODEL], "model check")
        lines = [ln for ln in out.splitlines() if ln.startswith("edgecnn-probe:")]
        result = json.loads(lines[-1].split(":", 1)[1]) if lines else {}
        if "error" in result or not result:
            raise BundleError(f"the model does not load on this board: {result.get('error', 'no answer')}")
        self.log(f"model loads in {result['backend']} {result['backend_version']}")

    def ensure_user(self) -> None:
        """A system user ``edgecnn`` in its own group and in group ``video`` (cameras)."""
        if subprocess.run(["getent", "group", "video"], capture_output=True, check=False).returncode != 0:
            self._run(["groupadd", "--system", "video"], "groupadd video")
        if subprocess.run(["id", "-u", SERVICE_USER], capture_output=True, check=False).returncode != 0:
            self.log(f"creating the system user {SERVICE_USER} (groups {SERVICE_USER}, video)")
            self._run(
                ["useradd", "--system", "--user-group", "--groups", "video", "--home-dir", "/var/lib/edgecnn",
                 "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                "useradd",
            )  # fmt: skip
        else:
            self._run(["usermod", "--append", "--groups", "video", SERVICE_USER], "usermod")

    def for_prefix(self, rel: str) -> bytes:
        """A bundle file, with ``/opt/edgecnn/current/`` paths moved to ``--prefix`` if it differs."""
        data = (self.bundle / rel).read_bytes()
        if self.prefix.resolve() != DEFAULT_PREFIX:
            data = data.replace(
                f"{DEFAULT_PREFIX}/current/".encode(), f"{self.prefix.resolve()}/current/".encode()
            )
        return data

    def install_config(self, replace: bool) -> str:
        """Install ``device.yaml`` unless the one there was edited locally; return what happened."""
        self.etc.mkdir(parents=True, exist_ok=True)
        new = self.for_prefix(CONFIG)
        dest = self.etc / "device.yaml"
        record = self.etc / ".device.yaml.installed-sha256"
        new_hash = hashlib.sha256(new).hexdigest()
        if dest.exists():
            current = sha256_file(dest)
            if current == new_hash:
                _write_private(record, new_hash + "\n")
                return "unchanged"
            ours = record.read_text().strip() if record.exists() else None
            if current != ours:  # edited here since we installed it (or not ours at all)
                if not replace:
                    self._write_config(self.etc / "device.yaml.dist", new)
                    return "kept (edited locally); the bundle's is device.yaml.dist"
                stamp = time.strftime("%Y%m%d-%H%M%S")
                backup = self.etc / f"device.yaml.{stamp}.bak"
                n = 1
                while backup.exists():
                    backup = self.etc / f"device.yaml.{stamp}-{n}.bak"
                    n += 1
                self._write_config(backup, dest.read_bytes())
        self._write_config(dest, new)
        _write_private(record, new_hash + "\n")
        return "installed"

    def _write_config(self, dest: Path, data: bytes) -> None:
        """Write a device config (it may hold an MQTT password) atomically, readable by root and
        the service's group only (0640 root:edgecnn; 0644 when there is no such group, as with
        ``--no-user``). Used for ``device.yaml`` and its ``.dist`` and ``.bak`` copies alike."""
        tmp = dest.with_name(f".{dest.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            group = int(self._run(["getent", "group", SERVICE_USER], "getent").split(":")[2])
            os.chown(tmp, 0, group)
            os.chmod(tmp, 0o640)
        except (BundleError, OSError, IndexError, ValueError):
            os.chmod(tmp, 0o644)
        os.replace(tmp, dest)

    def systemd_running(self) -> bool:
        """True when systemd is the init system here (not in a chroot or a container without it)."""
        return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None

    def install_unit(self) -> None:
        """Copy the unit and reload systemd."""
        self.unit_dir.mkdir(parents=True, exist_ok=True)
        (self.unit_dir / Path(UNIT).name).write_bytes(self.for_prefix(UNIT))
        os.chmod(self.unit_dir / Path(UNIT).name, 0o644)
        if self.systemd_running():
            self._run(["systemctl", "daemon-reload"], "systemctl daemon-reload")

    def switch_current(self) -> None:
        """Point ``prefix/current`` at the release, atomically (a rename over the old link); the
        release it pointed at before becomes ``prefix/previous``."""
        before = link_target(self.prefix, "current")
        if before is not None and before != self.version:
            _replace_link(self.prefix, PREVIOUS, before)
        _replace_link(self.prefix, "current", self.version)


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically, readable by root only (0600): the config's sha256 would let
    anyone who can read it check a guess of the MQTT password offline."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    os.replace(tmp, path)


def _replace_link(prefix: Path, name: str, version: str) -> None:
    """Point ``prefix/name`` at ``releases/<version>`` atomically (a new link renamed over it)."""
    tmp = prefix / f".{name}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(Path("releases") / version, tmp)
    os.replace(tmp, prefix / name)


def link_target(prefix: Path, name: str) -> str | None:
    """The release version ``prefix/current`` (or ``previous``) points at, or None."""
    try:
        target = Path(os.readlink(prefix / name))
    except OSError:
        return None
    return target.name if target.parent.name == "releases" else None


def _pyvenv_base(venv: Path) -> tuple:
    """The interpreter a venv was made from: ``home`` and ``version`` of its ``pyvenv.cfg``."""
    values = {}
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values.get("home"), values.get("version", values.get("version_info"))


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        raise BundleError(f"{venv}: expected one lib/python3.X/site-packages")
    return found[0]


def _normalise(name: str) -> str:
    return "".join("-" if c in "-_." else c for c in name.lower())


def verify_site_packages(site: Path, requirements: str) -> int:
    """Check a copied ``site-packages``: every file with a hash in a package's ``RECORD`` has
    that sha256, every other file but byte code is listed in one, and every pinned requirement
    (``name==version``) is installed at that version. Returns the number of files checked.

    Raises:
        BundleError: naming the first file or package that does not match.
    """
    installed = {}
    listed = set()
    checked = 0
    for record in sorted(site.glob("*.dist-info/RECORD")):
        name, _, version = record.parent.name[: -len(".dist-info")].partition("-")
        installed[_normalise(name)] = version
        with record.open(newline="") as handle:
            for row in csv.reader(handle):
                if not row:
                    continue
                path = (site / row[0]).resolve()
                if site.resolve() not in path.parents:
                    continue  # scripts in bin/: written anew for this venv
                listed.add(path)
                if len(row) < 2 or not row[1]:
                    continue
                algorithm, _, expected = row[1].partition("=")
                digest = hashlib.new(algorithm)
                with path.open("rb") as data:
                    for block in iter(lambda: data.read(1 << 20), b""):
                        digest.update(block)
                actual = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
                if actual != expected:
                    raise BundleError(f"{path}: differs from its package's RECORD")
                checked += 1
    for path in site.rglob("*"):
        if path.is_file() and path.suffix != ".pyc" and path.resolve() not in listed:
            raise BundleError(f"{path}: not listed in any package's RECORD")
    for line in requirements.splitlines():
        pin = line.split("--hash", 1)[0].strip().rstrip("\\").strip()
        if "==" not in pin or pin.startswith("#"):
            continue
        name, version = pin.split("==", 1)
        if installed.get(_normalise(name)) != version.strip():
            raise BundleError(f"{name.strip()}=={version.strip()} is not installed there")
    return checked


def release_space_needed(bundle: Path) -> int:
    """About the bytes a new release of the unpacked ``bundle`` takes: its file copies, every
    wheel's files unpacked, byte code for their ``.py`` files (counted twice their size) and the
    venv's own pip. For the tiny detector's x86_64 bundle: 363 MB estimated, 352 MB used.
    (``edgecnn deploy`` makes the same estimate from the archive, before uploading it.)"""
    total = VENV_BASE_BYTES
    for rel in RELEASE_COPIES:
        total += (bundle / rel).stat().st_size
    for wheel in sorted((bundle / WHEELS).glob("*.whl")):
        try:
            with zipfile.ZipFile(wheel) as archive:
                total += wheel_installed_bytes(archive)
        except (OSError, zipfile.BadZipFile):
            total += wheel.stat().st_size  # pip will say what is wrong with it
    return total


def wheel_installed_bytes(wheel: zipfile.ZipFile) -> int:
    """About the bytes a wheel takes installed: its files, and byte code for its ``.py`` files
    (counted twice their size)."""
    return sum(info.file_size * (3 if info.filename.endswith(".py") else 1) for info in wheel.infolist())


def check_free_space(prefix: Path, needed: int) -> None:
    """Refuse to start a release that does not fit (a full disk half-way through pip leaves a
    board short of space for everything else).

    Raises:
        BundleError: one line naming the free and the needed space.
    """
    where = prefix
    while not where.exists() and where != where.parent:
        where = where.parent
    stats = os.statvfs(where)
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise BundleError(
            f"not enough space in {prefix}: {free / 1e6:.0f} MB free, the new release needs about "
            f"{needed / 1e6:.0f} MB (free some, or remove old releases: install.py --prune --keep 1)"
        )


@contextlib.contextmanager
def _locked(prefix: Path) -> Iterator[None]:
    """Hold the prefix's install lock: one installer, switch or prune at a time."""
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def list_releases(prefix: Path = DEFAULT_PREFIX) -> list:
    """The release directories, oldest install first: ``version``, ``complete``, ``installed``
    (UTC time of the complete mark, or None), ``current``, ``previous``."""
    current, previous = link_target(prefix, "current"), link_target(prefix, PREVIOUS)
    found = []
    for release in (prefix / "releases").glob("*"):
        if not release.is_dir() or release.is_symlink():
            continue
        mark = release / COMPLETE_MARK
        stamp = (mark if mark.is_file() else release).stat().st_mtime
        found.append((stamp, release.name, mark.is_file()))
    return [
        {
            "version": version,
            "complete": complete,
            "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)) if complete else None,
            "current": version == current,
            "previous": version == previous,
        }
        for stamp, version, complete in sorted(found)
    ]


def _prune(prefix: Path, keep: int, log: Callable[[str], object]) -> list:
    """Remove failed attempts and all but the ``keep`` newest complete releases; the current and
    the previous release always stay. Call with the lock held. Returns the removed versions."""
    releases = list_releases(prefix)
    complete = [r for r in releases if r["complete"]]
    kept = {r["version"] for r in complete if r["current"] or r["previous"]}
    for release in reversed(complete):
        if len(kept) >= keep:
            break
        kept.add(release["version"])
    removed = []
    for release in releases:
        if release["version"] not in kept:
            log(f"removing release {release['version']}" + ("" if release["complete"] else " (incomplete)"))
            shutil.rmtree(prefix / "releases" / release["version"])
            removed.append(release["version"])
    return removed


def prune_releases(
    prefix: Path = DEFAULT_PREFIX, keep: int = 3, log: Callable[[str], object] = print
) -> list:
    """Keep at most ``keep`` complete releases (never the current or the previous one); remove
    the others and any incomplete attempt. Returns the removed versions."""
    with _locked(prefix):
        return _prune(prefix, keep, log)


def _activate(
    job: Installer,
    replace_config: bool,
    enable: bool,
    start: bool,
    keep: int | None,
    previous: str | None = None,
) -> tuple:
    """Make ``job.release`` the running one: config, unit, the ``current`` link (and ``previous``,
    see :func:`set_previous`), the service, then pruning. Call with the lock held. Returns the
    config's state and the pruned versions."""
    config = job.install_config(replace_config)
    job.log(f"config {job.etc / 'device.yaml'}: {config}")
    if job.systemd:
        job.install_unit()
    job.switch_current()
    job.log(f"{job.prefix / 'current'} -> releases/{job.release.name}")
    if previous is not None:
        set_previous(job.prefix, previous, job.log)
    _systemctl(job, enable, start)
    removed = _prune(job.prefix, keep, job.log) if keep else []
    return config, removed


def set_previous(prefix: Path, version: str, log: Callable[[str], object] = print) -> str | None:
    """Point ``prefix/previous`` at ``version`` (a rollback restores the link the deploy found, so
    that it names the last good release, not the one that just failed); remove the link when
    ``version`` is empty, is the current release or is not a complete release. Call with the
    lock held. Returns the version it names afterwards."""
    release = prefix / "releases" / version
    usable = bool(version) and "/" not in version and version not in (".", "..")
    if usable and version != link_target(prefix, "current") and (release / COMPLETE_MARK).is_file():
        _replace_link(prefix, PREVIOUS, version)
        log(f"{prefix / PREVIOUS} -> releases/{version}")
        return version
    with contextlib.suppress(FileNotFoundError):
        (prefix / PREVIOUS).unlink()
    log(f"{prefix / PREVIOUS} removed" + (f" ({version} is not a complete release)" if version else ""))
    return None


def _systemctl(job: Installer, enable: bool, start: bool) -> None:
    if job.systemd and job.systemd_running():
        unit = Path(UNIT).name
        if enable:
            job._run(["systemctl", "enable", unit], "systemctl enable")
        if start:
            job._run(["systemctl", "restart", unit], "systemctl restart")


def switch_release(
    version: str,
    prefix: Path = DEFAULT_PREFIX,
    etc: Path = Path("/etc/edgecnn"),
    unit_dir: Path = Path("/etc/systemd/system"),
    systemd: bool = True,
    enable: bool = False,
    start: bool = False,
    replace_config: bool = False,
    keep: int | None = None,
    previous: str | None = None,
    log: Callable[[str], object] = print,
) -> dict:
    """Make an installed, complete release current again (a rollback): its config (by the same
    rules as an install) and unit, then the ``current`` link. ``version`` may be ``previous``.

    ``previous`` None: ``previous`` then names the release that was current before (so two
    switches to ``previous`` toggle); a version: ``previous`` names it instead (``edgecnn
    deploy``'s rollback restores the link it found, the last good release); '': no ``previous``.

    Returns:
        ``version``, ``release``, ``state`` (``switched``), ``config``, ``removed``.

    Raises:
        BundleError: no such complete release (nothing changed), or a step failed.
    """
    if systemd and os.geteuid() != 0:
        raise BundleError("run as root (sudo python3 install.py --switch-to ...)")
    with _locked(prefix):
        if version == PREVIOUS:
            named = link_target(prefix, PREVIOUS)
            if named is None:
                raise BundleError(f"{prefix / PREVIOUS}: there is no previous release")
            version = named
        release = prefix / "releases" / version
        if "/" in version or version in ("", ".", "..") or not (release / COMPLETE_MARK).is_file():
            raise BundleError(f"{release}: not a complete release (see --list)")
        job = Installer(
            release, read_manifest(release), prefix, etc, unit_dir, sys.executable, False, systemd, log
        )
        config, removed = _activate(job, replace_config, enable, start, keep, previous)
    return {
        "version": version,
        "release": str(release),
        "state": "switched",
        "config": config,
        "removed": removed,
    }


def install(
    bundle: Path,
    prefix: Path = DEFAULT_PREFIX,
    etc: Path = Path("/etc/edgecnn"),
    unit_dir: Path = Path("/etc/systemd/system"),
    python: str = sys.executable,
    manage_user: bool = True,
    systemd: bool = True,
    enable: bool = False,
    start: bool = False,
    replace_config: bool = False,
    force: bool = False,
    keep: int | None = None,
    switch: bool = True,
    log: Callable[[str], object] = print,
) -> dict:
    """Verify the unpacked bundle, then install it (see the module docstring); with ``keep``,
    prune old releases afterwards (:func:`prune_releases`).

    With ``switch=False`` only the release is built and checked (and the service user made):
    the config, the unit, the ``current`` link and the service stay as they are, so an
    interrupted call leaves the running release untouched; :func:`switch_release` then makes
    it current (``edgecnn deploy`` does both, in two calls).

    Returns:
        A summary: ``version``, ``release``, ``state`` (``installed`` or ``already installed``),
        ``config`` (None without the switch), ``venv_from`` (the release whose packages were
        reused, or None), ``removed`` (pruned releases) and ``seconds`` per step.

    Raises:
        BundleError: verification failed (nothing was changed) or a step failed.
    """
    started = time.monotonic()
    bundle = bundle.resolve()
    manifest = verify_bundle(bundle)
    check_board(manifest, python)
    if (manage_user or systemd) and os.geteuid() != 0:
        raise BundleError(
            "run as root (sudo python3 install.py): it creates a user and installs a systemd unit"
        )
    log(f"bundle {manifest['name']} {manifest['version']} verified ({len(manifest['files'])} files)")
    timings = {"verify": round(time.monotonic() - started, 2)}
    job = Installer(bundle, manifest, prefix, etc, unit_dir, python, manage_user, systemd, log)
    with _locked(prefix):
        state = job.release_state(force)
        if state == "new":
            check_free_space(prefix, release_space_needed(bundle))
            job.build_release()
        else:
            log(f"release {job.release} is already this bundle")
        if manage_user:
            job.ensure_user()
        config, removed = _activate(job, replace_config, enable, start, keep) if switch else (None, [])
    timings.update(job.timings)
    timings["total"] = round(time.monotonic() - started, 2)
    return {
        "version": job.version,
        "release": str(job.release),
        "state": "installed" if state == "new" else "already installed",
        "config": config,
        "venv_from": job.reused_from,
        "removed": removed,
        "seconds": timings,
    }


def main(argv: list | None = None) -> int:
    """Entry point: ``python3 install.py [options]`` from the unpacked bundle."""
    parser = argparse.ArgumentParser(
        prog="install.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    here = Path(__file__).resolve().parent
    parser.add_argument(
        "--bundle", type=Path, default=here, help="the unpacked bundle (default: this directory)"
    )
    parser.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX, help="releases live here")
    parser.add_argument("--etc", type=Path, default=Path("/etc/edgecnn"), help="device.yaml goes here")
    parser.add_argument("--unit-dir", type=Path, default=Path("/etc/systemd/system"))
    parser.add_argument("--python", default=sys.executable, help="the Python the venv is made from")
    parser.add_argument(
        "--verify-only", action="store_true", help="check the bundle and the board, change nothing"
    )
    parser.add_argument("--enable", action="store_true", help="systemctl enable the service")
    parser.add_argument("--start", action="store_true", help="systemctl restart the service afterwards")
    parser.add_argument("--replace-config", action="store_true", help="replace a locally edited device.yaml")
    parser.add_argument("--force", action="store_true", help="replace a release of the same version")
    parser.add_argument(
        "--no-switch",
        action="store_true",
        help="only build and check the release (config, unit, current link and service untouched); "
        "--switch-to VERSION makes it current",
    )
    parser.add_argument("--no-user", action="store_true", help="do not create the edgecnn user")
    parser.add_argument("--no-systemd", action="store_true", help="no unit, no systemctl (containers)")
    parser.add_argument(
        "--list", action="store_true", help="print the installed releases as JSON, change nothing"
    )
    parser.add_argument(
        "--switch-to",
        metavar="VERSION",
        help="make an installed release current again (rollback), with its config and unit; 'previous' "
        "for the release current pointed at before",
    )
    parser.add_argument(
        "--previous",
        metavar="VERSION",
        help="with --switch-to: point the previous link at VERSION instead of the release that was "
        "current ('' removes it); a rollback names the last good release this way",
    )
    parser.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="afterwards keep at most N complete releases (never the current or the previous one)",
    )
    parser.add_argument("--prune", action="store_true", help="only remove old releases (needs --keep)")
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep < 1:
        parser.error("--keep must be at least 1")
    if args.prune and args.keep is None:
        parser.error("--prune needs --keep N")
    if args.previous is not None and not args.switch_to:
        parser.error("--previous needs --switch-to VERSION")
    try:
        if args.list:
            print(json.dumps(list_releases(args.prefix), indent=2))
            return 0
        if args.prune:
            removed = prune_releases(args.prefix, args.keep)
            print("install.py: " + json.dumps({"removed": removed, "state": "pruned"}, sort_keys=True))
            return 0
        if args.switch_to:
            summary = switch_release(
                args.switch_to,
                prefix=args.prefix,
                etc=args.etc,
                unit_dir=args.unit_dir,
                systemd=not args.no_systemd,
                enable=args.enable,
                start=args.start,
                replace_config=args.replace_config,
                keep=args.keep,
                previous=args.previous,
            )
            print("install.py: " + json.dumps(summary, sort_keys=True))
            return 0
        if args.verify_only:
            manifest = verify_bundle(args.bundle.resolve())
            check_board(manifest, args.python)
            print(f"bundle {manifest['name']} {manifest['version']} verified; it fits this board")
            return 0
        summary = install(
            args.bundle,
            prefix=args.prefix,
            etc=args.etc,
            unit_dir=args.unit_dir,
            python=args.python,
            manage_user=not args.no_user,
            systemd=not args.no_systemd,
            enable=args.enable,
            start=args.start,
            replace_config=args.replace_config,
            force=args.force,
            keep=args.keep,
            switch=not args.no_switch,
        )
    except BundleError as exc:
        print(f"install.py: error: {exc}", file=sys.stderr)
        return 1
    print("install.py: " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
