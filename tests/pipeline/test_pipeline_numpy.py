"""The TensorFlow-free side of the pipeline: iter_preprocessed, read_letterboxed, and imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.data import Split
from edgecnn.data.pipeline import iter_preprocessed, read_image, read_letterboxed
from edgecnn.errors import DataError
from edgecnn.runtime.preprocessing import preprocess
from edgecnn.runtime.spec import InputSpec

ROOT = Path(__file__).resolve().parents[2]


def test_iter_preprocessed_yields_the_board_tensor_record_and_letterbox(rect_split: Split) -> None:
    spec = InputSpec(width=64, height=48, color_order="BGR", mean=(5, 6, 7), std=(8, 9, 10))
    seen = []
    for tensor, record, info in iter_preprocessed(rect_split, spec):
        expected, expected_info = preprocess(cv2.imread(str(record.path)), spec)
        np.testing.assert_array_equal(tensor, expected)
        assert tensor.shape == (1, 48, 64, 3) and info == expected_info
        # The letterbox maps the record's boxes to input pixels and back.
        np.testing.assert_allclose(info.to_source(info.to_input(record.boxes)), record.boxes, atol=1e-4)
        seen.append(record.image_id)
    assert seen == [r.image_id for r in rect_split.records]


@pytest.mark.parametrize("resize", ["letterbox", "stretch", "crop"])
@pytest.mark.parametrize("channels", [1, 3])
def test_read_letterboxed_then_preprocess_equals_preprocess_of_the_frame(
    rect_split: Split, resize: str, channels: int
) -> None:
    spec = InputSpec(width=56, height=40, channels=channels, resize=resize)
    for record in rect_split.records:
        image, info = read_letterboxed(record.path, spec)
        assert image.shape == ((40, 56) if channels == 1 else (40, 56, 3)) and image.dtype == np.uint8
        expected, expected_info = preprocess(cv2.imread(str(record.path)), spec)
        np.testing.assert_array_equal(preprocess(image, spec)[0], expected)
        assert info == expected_info


@pytest.mark.parametrize("resize", ["crop", "letterbox"])
def test_training_content_is_the_image_inside_the_padding(rect_split: Split, resize: str) -> None:
    from edgecnn.data.pipeline import _Source

    source = _Source(rect_split, InputSpec(width=40, height=40, resize=resize), cache=False)
    for index, record in enumerate(rect_split.records):
        image, _, _ = source.content(index)
        # a centre crop leaves no padding: the whole input is picture; a letterbox pads
        # the non-square images on one axis
        whole = resize == "crop" or record.width == record.height
        assert (image.shape[:2] == (40, 40)) is whole
        assert min(image.shape[:2]) > 0


def test_unreadable_image_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"bad\.jpg: cannot read the image"):
        read_image(bad)
    with pytest.raises(DataError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")


CODE = """
import json, sys
from edgecnn.data import load_split
from edgecnn.data.pipeline import iter_preprocessed
import edgecnn.data.augment, edgecnn.data.split, edgecnn.train.anchors
from edgecnn.runtime.spec import InputSpec
split = load_split(sys.argv[1], "train")
n = sum(1 for _ in iter_preprocessed(split, InputSpec(width=32, height=32)))
print(json.dumps({"n": n, "loaded": sorted(sys.modules)}))
"""


def test_numpy_side_never_imports_tensorflow(synth_root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CODE, str(synth_root)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["n"] == 40
    heavy = [m for m in result["loaded"] if m.split(".")[0] in ("tensorflow", "keras")]
    assert heavy == []
