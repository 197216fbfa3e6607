"""A folder given where a data.yaml is expected: the hint names the YAML file in it, or the
data.yaml lines for the layout it holds, and those lines load the same dataset."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from edgecnn.data import load_split
from edgecnn.data.locate import folder_hint, require_data_yaml
from edgecnn.errors import UserError


def test_a_yaml_file_in_the_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("train: x\n")
    (tmp_path / "other.yaml").write_text("train: x\n")
    assert folder_hint(tmp_path) == f"did you mean {tmp_path / 'data.yaml'}?"
    (tmp_path / "data.yaml").unlink()
    assert folder_hint(tmp_path) == f"did you mean {tmp_path / 'other.yaml'}?"
    (tmp_path / "coco8.yml").write_text("train: x\n")
    both = f"{tmp_path / 'coco8.yml'}, {tmp_path / 'other.yaml'}"
    assert folder_hint(tmp_path) == f"did you mean one of {both}?"


def test_a_folder_is_refused_in_one_line_and_a_file_passes(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("train: x\n")
    with pytest.raises(UserError) as err:
        require_data_yaml(tmp_path)
    assert str(err.value) == (
        f"--data {tmp_path}: a folder, not a data.yaml; did you mean {tmp_path / 'data.yaml'}?"
    )
    require_data_yaml(tmp_path / "data.yaml")  # a file (or a missing path: the loader names it) passes
    require_data_yaml(tmp_path / "missing.yaml")
    (tmp_path / "data.yaml").unlink()
    (tmp_path / "notes").mkdir()
    assert "pass the dataset's data.yaml" in folder_hint(tmp_path)  # no layout recognised


@pytest.mark.parametrize("fmt", ["folders", "yolo", "voc", "coco"])
def test_the_suggested_data_yaml_loads_the_dataset(fmt: str, make_dataset: Callable[[str], Path]) -> None:
    data_yaml = make_dataset(fmt)
    names = load_split(data_yaml, "train").names
    expected = {split: len(load_split(data_yaml, split)) for split in ("train", "val")}
    data_yaml.unlink()
    hint = folder_hint(data_yaml.parent)
    assert hint.startswith("it holds ") and hint.endswith(" and pass that"), hint
    lines = re.findall(r"`([^`]+)`", hint)
    text = "\n".join(lines)
    if "names: " in text:  # YOLO and VOC label files do not name their classes: the user writes them
        assert "names: [CLASS_0, CLASS_1, ...]" in text
        text = re.sub(r"names: .*", f"names: [{', '.join(names)}]", text)
    data_yaml.write_text(text + "\n")
    assert {split: len(load_split(data_yaml, split)) for split in ("train", "val")} == expected


def test_one_split_without_val_points_at_data_split(make_dataset: Callable[[str], Path]) -> None:
    classes = make_dataset("folders").parent / "train"  # cat/, dog/, bird/ and no split
    hint = folder_hint(classes)
    assert hint == (
        f"it holds one folder per class without a val split: write {classes / 'data.yaml'} with "
        f"`train: .`, then make train/val splits with `edgecnn data split {classes / 'data.yaml'} "
        "--out NEW_FOLDER`"
    )


def test_classes_txt_names_the_yolo_classes(make_dataset: Callable[[str], Path]) -> None:
    data_yaml = make_dataset("yolo")
    data_yaml.unlink()
    root = data_yaml.parent
    (root / "classes.txt").write_text("cat\ndog\nbird\n")
    assert "`names: [cat, dog, bird]`" in folder_hint(root)
