"""--exist-ok replaces a run without losing it to an early stop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgecnn.errors import UserError
from edgecnn.train.rundir import PREVIOUS_DIR, RunDir

OUTPUTS = ("model.keras", "spec.json", "val_pred.jpg", "train_state.json")
MARKERS = ("train_state.json", "model.keras")


def _old_run(path: Path) -> dict[str, bytes]:
    path.mkdir(parents=True)
    files = {name: f"old {name}".encode() for name in OUTPUTS}
    for name, data in files.items():
        (path / name).write_bytes(data)
    (path / "notes.txt").write_text("the user's own file")
    return files


def _contents(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}


def test_an_occupied_folder_needs_exist_ok(tmp_path: Path) -> None:
    _old_run(tmp_path / "run")
    with pytest.raises(UserError, match="already holds a run"):
        RunDir(tmp_path / "run", OUTPUTS, MARKERS).prepare(exist_ok=False)


def test_rollback_puts_the_old_run_back(tmp_path: Path) -> None:
    run = tmp_path / "run"
    before = {**_old_run(run), "notes.txt": b"the user's own file"}
    run_dir = RunDir(run, OUTPUTS, MARKERS)
    run_dir.prepare(exist_ok=True)
    assert _contents(run) == {"notes.txt": b"the user's own file"}  # the new run starts clean
    (run / "spec.json").write_bytes(b"new spec")  # the new run's first files, then Ctrl-C
    (run / "train_config.json").write_bytes(b"not an output name: stays")
    run_dir.rollback()
    assert _contents(run) == {**before, "train_config.json": b"not an output name: stays"}
    assert not (run / PREVIOUS_DIR).exists()


def test_commit_drops_the_old_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _old_run(run)
    run_dir = RunDir(run, OUTPUTS, MARKERS)
    run_dir.prepare(exist_ok=True)
    (run / "model.keras").write_bytes(b"new model")
    run_dir.commit()
    run_dir.rollback()  # after a commit there is nothing to put back
    assert _contents(run) == {"notes.txt": b"the user's own file", "model.keras": b"new model"}
    assert not (run / PREVIOUS_DIR).exists()


def test_a_stale_previous_folder_is_replaced(tmp_path: Path) -> None:
    run = tmp_path / "run"
    before = _old_run(run)
    (run / PREVIOUS_DIR).mkdir()
    (run / PREVIOUS_DIR / "model.keras").write_bytes(b"from a process killed with -9")
    run_dir = RunDir(run, OUTPUTS, MARKERS)
    run_dir.prepare(exist_ok=True)
    assert _contents(run / PREVIOUS_DIR) == before
    shutil.rmtree(run)


@pytest.mark.tf
@pytest.mark.slow
def test_train_interrupted_before_its_first_epoch_keeps_the_old_run(
    cls_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecnn.train import TrainConfig, train
    from edgecnn.train.loop import Trainer

    run = tmp_path / "run"
    config = TrainConfig(data=cls_data, model="lenet_test", imgsz=32, epochs=1, batch=8, out=run)
    train(config)
    before = _contents(run)
    assert {"model.keras", "metrics.json", "last.npz"} <= set(before)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config.model_copy(update={"exist_ok": True, "epochs": 3}))
    assert _contents(run) == before


def test_a_run_left_aside_by_a_killed_replacement_comes_back_first(tmp_path: Path) -> None:
    run = tmp_path / "run"
    before = {**_old_run(run), "notes.txt": b"the user's own file"}
    RunDir(run, OUTPUTS, MARKERS).prepare(exist_ok=True)
    (run / "spec.json").write_bytes(b"the killed run's stub")  # then kill -9: no rollback
    later = RunDir(run, OUTPUTS, MARKERS)
    later.recover()
    assert _contents(run) == before and not (run / PREVIOUS_DIR).exists()
    with pytest.raises(UserError, match="already holds a run"):  # so a new run without --exist-ok stops
        later.prepare(exist_ok=False)
