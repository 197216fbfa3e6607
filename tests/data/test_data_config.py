"""data.yaml: path resolution, names, known extra keys, and errors that point at the line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edgecnn.data import load_data_config, load_split, write_data_yaml
from edgecnn.errors import DataError


def _yaml(tmp_path: Path, text: str, name: str = "data.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_relative_path_resolves_against_the_yaml_folder_and_splits_against_path(tmp_path: Path) -> None:
    (tmp_path / "datasets" / "shapes" / "images" / "val").mkdir(parents=True)
    config = load_data_config(
        _yaml(tmp_path, "path: ../datasets/shapes\nval: images/val\nnames: [a]\n", "configs/data.yaml")
    )
    assert config.root == tmp_path / "datasets" / "shapes"
    assert config.split_paths("val") == [tmp_path / "datasets" / "shapes" / "images" / "val"]


def test_without_path_the_yaml_folder_is_the_root_and_absolute_splits_stay(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "cfg" / "train").mkdir(parents=True)
    config = load_data_config(_yaml(tmp_path, f"train: train\nval: {elsewhere}\n", "cfg/data.yaml"))
    assert config.root == tmp_path / "cfg"
    assert config.split_paths("train") == [tmp_path / "cfg" / "train"]
    assert config.split_paths("val") == [elsewhere]
    assert config.splits() == ["train", "val"]


def test_names_as_list_or_mapping(tmp_path: Path) -> None:
    as_list = load_data_config(_yaml(tmp_path, "names: [cat, dog]\n", "a.yaml"))
    as_dict = load_data_config(_yaml(tmp_path, "names:\n  1: dog\n  0: cat\n", "b.yaml"))
    assert as_list.class_names == as_dict.class_names == ["cat", "dog"]
    assert load_data_config(_yaml(tmp_path, "val: x\n", "c.yaml")).class_names is None


def test_known_ultralytics_and_roboflow_keys_are_accepted(tmp_path: Path) -> None:
    text = (
        "train: ../train/images\nnc: 2\nnames: ['a', 'b']\n"
        "download: https://example.com/x.zip\nroboflow:\n  workspace: w\n  version: 3\n"
    )
    (tmp_path / "train" / "images").mkdir(parents=True)
    config = load_data_config(_yaml(tmp_path, text))
    # Roboflow's "../train/images" does not exist beside the yaml; Ultralytics then drops the "../".
    assert config.split_paths("train") == [tmp_path / "train" / "images"]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("names: [a]\ntrian: images/train\n", 2, "unknown key 'trian' (did you mean 'train'?)"),
        ("names: [a, b]\nval: x\nnc: 3\n", 3, "nc is 3 but names has 2 entries"),
        ("val: x\nnames:\n  0: a\n  2: b\n", 2, "ids of a names mapping must be 0..1"),
        ("names: [a, b, a]\n", 1, "duplicate class names: a"),
        ("names: [a]\nformat: darknet\n", 2, "bad value for 'format'"),
        ("names: [a]\ntask: segment\n", 2, "bad value for 'task'"),
        ("train: a\nval: b\ntrain: c\n", 3, "key 'train' is set twice, on line 1 and line 3"),
        ("val: x\nnames:\n  0: a\n  1: b\n  0: c\n", 5, "key '0' is set twice, on line 3 and line 5"),
        ("{val: x, val: y}\n", 1, "key 'val' is set twice, on line 1 (YAML would keep the last)"),
        ("val: x\nnc: -1\n", 2, "nc must be 1..100000, got -1"),
        ("val: x\nnc: 100000000000\n", 2, "nc must be 1..100000"),
    ],
)
def test_bad_keys_and_values_name_the_key_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = _yaml(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_data_config(path)
    assert info.value.path == str(path)
    assert info.value.entry == f"line {line}"
    assert fragment in str(info.value)


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="invalid YAML") as info:
        load_data_config(_yaml(tmp_path, "names: [a, b\nval: x\n"))
    assert info.value.entry is not None and info.value.entry.startswith("line ")
    with pytest.raises(DataError, match="expected a mapping"):
        load_data_config(_yaml(tmp_path, "- a\n- b\n"))
    with pytest.raises(DataError, match="file not found"):
        load_data_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "invalid YAML: nested too deeply"),
        ("nc: " + "9" * 5000, "invalid YAML: Exceeds the limit"),
    ],
    ids=["nested", "long integer"],
)
def test_yaml_the_loader_refuses_is_invalid(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_data_config(_yaml(tmp_path, text))


def test_a_data_yaml_that_is_not_a_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # reading it would block until a writer comes
    with pytest.raises(DataError, match=r"pipe\.yaml: is a named pipe \(FIFO\), not a file$"):
        load_data_config(tmp_path / "pipe.yaml")
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(DataError, match=r"folder\.yaml: is a folder, not a file$"):
        load_data_config(tmp_path / "folder.yaml")


def test_missing_and_unset_splits(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "names: [a]\ntrain: nowhere/images\n")
    with pytest.raises(DataError, match=r"train path .*nowhere/images does not exist") as info:
        load_split(path, "train")
    assert info.value.path == str(path) and info.value.entry == "line 2"
    with pytest.raises(DataError, match="no 'val' split is set"):
        load_split(path, "val")
    with pytest.raises(DataError, match="unknown split 'valid'"):
        load_split(path, "valid")


@pytest.mark.parametrize("fmt", ["", "format: yolo\n"], ids=["detected", "format set"])
def test_split_paths_that_are_neither_file_nor_folder(tmp_path: Path, fmt: str) -> None:
    os.mkfifo(tmp_path / "pipe")  # reading it would block until a writer comes
    for value, kind in (("/dev/zero", "a device"), ("pipe", "a named pipe (FIFO)")):
        path = _yaml(tmp_path, f"names: [a]\n{fmt}train: {value}\n")
        with pytest.raises(
            DataError, match=rf"train path .*{value} is {re.escape(kind)}, not a file or folder$"
        ) as info:
            load_split(path, "train")
        assert info.value.path == str(path) and info.value.entry == f"line {2 + bool(fmt)}"


def test_a_split_name_the_system_refuses_does_not_exist(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "names: [a]\ntrain: ../" + "x" * 5000 + "\n")  # longer than NAME_MAX
    with pytest.raises(DataError, match=r"train path .*xxx does not exist"):
        load_split(path, "train")


def test_write_data_yaml_reads_back(tmp_path: Path) -> None:
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "b").mkdir()
    path = write_data_yaml(
        tmp_path / "data.yaml", ["x", "y"], {"train": ["a", "b"], "val": "a"}, root="root", format="yolo"
    )
    config = load_data_config(path)
    assert config.class_names == ["x", "y"]
    assert config.format == "yolo" and config.task is None
    assert config.split_paths("train") == [tmp_path / "root" / "a", tmp_path / "root" / "b"]
    with pytest.raises(ValueError, match="unknown split keys"):
        write_data_yaml(tmp_path / "bad.yaml", ["x"], {"valid": "a"})
