"""The registry without building models: names, settings, specs, errors, cached figures."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from edgecnn.architectures import build_model, get_model_info, list_models, model_figures, register_model
from edgecnn.architectures.stats import FIGURES
from edgecnn.errors import UserError
from edgecnn.runtime.spec import ModelSpec

PUBLIC = [info.name for info in list_models()]
ALL = [info.name for info in list_models(include_test=True)]
TEST_VARIANTS = [info.name for info in list_models(include_test=True) if info.test]


def test_required_variants_are_registered() -> None:
    required = {
        "lenet", "alexnet_mini", "minivggnet", "mini_googlenet", "mini_resnet",
        "mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075", "mobilenet_v1_100",
        "mobilenet_v2_035", "mobilenet_v2_050", "mobilenet_v2_075", "mobilenet_v2_100",
        "mobilenet_v3_small_075", "mobilenet_v3_small_100",
        "mobilenet_v3_large_075", "mobilenet_v3_large_100",
        "tiny_yolo_v2", "tiny_yolo_v3", "yolo_lite", "mobilenet_v2_yolo_035",
    }  # fmt: skip
    assert required <= set(PUBLIC)


def test_every_family_has_exactly_one_test_variant() -> None:
    families = {info.family for info in list_models(include_test=True)}
    test_families = [get_model_info(name).family for name in TEST_VARIANTS]
    assert sorted(test_families) == sorted(families)
    for name in TEST_VARIANTS:
        info = get_model_info(name)
        assert name.endswith("_test")
        assert max(info.input_size) <= 64


@pytest.mark.parametrize("name", ALL)
def test_variant_settings_are_consistent(name: str) -> None:
    info = get_model_info(name)
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
    assert info.description, "the variant function needs a docstring"
    assert info.builder is not None and info.builder.__name__ == name
    spec = info.input_spec()
    assert (spec.height, spec.width) == info.input_size
    assert len(spec.mean) == len(spec.std) == info.channels
    if info.task == "detect":
        assert info.layout in ("yolo_v2", "yolo_v3")
        assert all(size % max(info.strides) == 0 for size in info.input_size)
        assert info.class_activation == ("softmax" if info.layout == "yolo_v2" else "sigmoid")
        out = info.output_spec()
        assert out.strides == list(info.strides)
        assert [len(scale) for scale in out.anchors] == [info.num_anchors] * len(info.strides)
        # anchors fit inside the image
        assert all(
            0 < w <= info.input_size[1] and 0 < h <= info.input_size[0] for s in out.anchors for w, h in s
        )
    else:
        assert info.output_spec().layout == "classes"


def test_layouts_follow_the_spec() -> None:
    assert get_model_info("tiny_yolo_v2").output_spec().strides == [32]
    assert get_model_info("yolo_lite").output_spec().layout == "yolo_v2"
    v3 = get_model_info("tiny_yolo_v3").output_spec()
    assert (v3.layout, v3.strides, v3.class_activation) == ("yolo_v3", [16, 32], "sigmoid")
    # Every zoo detector decodes with a widened centre range, which its training assigns for.
    assert {get_model_info(n).output_spec().xy_scale for n in ("tiny_yolo_v2", "yolo_lite")} == {2.0}
    assert v3.xy_scale == 2.0
    assert v3.anchors[0] == [(10.0, 14.0), (23.0, 27.0), (37.0, 58.0)]
    m = get_model_info("mobilenet_v2_yolo_035").output_spec()
    assert (m.layout, m.strides) == ("yolo_v3", [16, 32])


def test_normalisation_per_family() -> None:
    mobilenet = get_model_info("mobilenet_v3_small_075").input_spec()
    assert (mobilenet.mean, mobilenet.std, mobilenet.color_order) == ((127.5,) * 3, (127.5,) * 3, "RGB")
    assert get_model_info("mobilenet_v2_yolo_050").input_spec().mean == (127.5,) * 3
    yolo = get_model_info("tiny_yolo_v3").input_spec()
    assert (yolo.mean, yolo.std, yolo.color_order) == ((0.0,) * 3, (255.0,) * 3, "RGB")
    lenet = get_model_info("lenet").input_spec()
    assert (lenet.channels, lenet.mean, lenet.std) == (1, (0.0,), (255.0,))


def test_default_anchors_scale_with_the_input_size() -> None:
    info = get_model_info("tiny_yolo_v3")
    assert info.default_anchors(832) == [[(w * 2, h * 2) for w, h in s] for s in info.anchors]
    wide = info.default_anchors((416, 832))
    assert wide[1][2] == (688.0, 319.0)
    spec = info.output_spec(input_size=320)
    assert spec.anchors[1][2] == (round(344 * 320 / 416, 2), round(319 * 320 / 416, 2))


def test_model_spec_round_trips_through_json() -> None:
    info = get_model_info("mobilenet_v2_yolo_035")
    anchors = [[(12, 16), (30, 40)], [(80, 60), (150, 120)]]
    spec = info.model_spec(["a", "b"], input_size=(160, 320), anchors=anchors)
    back = ModelSpec.from_json(spec.to_json())
    assert back == spec
    assert (back.input.height, back.input.width) == (160, 320)
    assert back.output.anchors == [[(12.0, 16.0), (30.0, 40.0)], [(80.0, 60.0), (150.0, 120.0)]]
    cls = get_model_info("mini_resnet").model_spec([str(i) for i in range(10)])
    assert (cls.task, cls.output.layout, cls.output.class_activation) == ("classify", "classes", "softmax")


def test_output_shapes() -> None:
    assert get_model_info("tiny_yolo_v3").output_shapes(80) == [(1, 26, 26, 255), (1, 13, 13, 255)]
    assert get_model_info("yolo_lite").output_shapes(20, num_anchors=3) == [(1, 7, 7, 75)]
    assert get_model_info("lenet").output_shapes(10) == [(1, 10)]


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UserError, match=r"unknown model 'mobilenet_v2_35'.*mobilenet_v2_035"):
        get_model_info("mobilenet_v2_35")
    with pytest.raises(UserError, match="edgecnn models"):
        get_model_info("resnet152_imagenet_xl")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("tiny_yolo_v3", {"input_size": 300}, "multiple of 32"),
        ("mobilenet_v2_035", {"input_size": 16}, "minimum of 32"),
        ("mobilenet_v2_035", {"input_size": (64, 64, 3)}, "int or \\(height, width\\)"),
        ("lenet", {"anchors": [[(1, 1)]]}, "classifier"),
        ("tiny_yolo_v3", {"anchors": [[(10, 10)]]}, "2 output scale"),
        ("tiny_yolo_v3", {"anchors": [[(10, 10)], [(20, 20), (30, 30)]]}, "same, non-zero number"),
        ("tiny_yolo_v2", {"anchors": [[(10, -1)]]}, "> 0 pixels"),
        ("tiny_yolo_v2", {"anchors": [[(10, 10)]], "num_anchors": 2}, "does not match"),
        ("lenet", {"channels": 2}, "channels must be 1 or 3"),
        ("lenet", {"width": 0}, "width must be > 0"),
        ("yolo_lite", {"num_anchors": 0}, "num_anchors must be >= 1"),
        ("lenet", {"num_anchors": 2}, "classifier"),
    ],
)
def test_bad_build_arguments_are_user_errors(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_model(name, num_classes=3, **kwargs)


def test_registering_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_model(family="lenet", task="classify", input_size=28)
        def lenet(**kwargs):
            """Duplicate."""


def test_detector_registration_is_validated() -> None:
    with pytest.raises(ValueError, match="default anchors"):

        @register_model(
            family="x", task="detect", input_size=64, layout="yolo_v2", strides=(32,), num_anchors=2,
            anchors=(((10, 10),),),
        )  # fmt: skip
        def _broken_detector(**kwargs):
            """Broken."""


def test_listing_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from edgecnn.architectures import list_models, model_table;"
        "assert len(model_table(include_test=True)) == len(list_models(include_test=True));"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'imported TF'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_models_filters() -> None:
    detect = list_models(task="detect")
    assert detect and all(info.task == "detect" and not info.test for info in detect)
    assert {i.name for i in list_models("classify")} | {i.name for i in detect} == set(PUBLIC)
    with pytest.raises(UserError):
        list_models(task="segment")  # type: ignore[arg-type]


def test_figure_table_covers_exactly_the_registry() -> None:
    # test_arch_build.py rebuilds every entry and compares; here: no stale or missing rows.
    assert set(FIGURES) == set(ALL)


@pytest.mark.parametrize(
    ("name", "params", "macs", "tolerance"),
    [
        # keras.applications / the papers (ImageNet, 224 px)
        ("mobilenet_v1_100", 4_253_864, 569e6, 0.01),
        ("mobilenet_v2_100", 3_538_984, 300e6, 0.01),
        ("mobilenet_v3_large_100", 5_507_432, 217e6, 0.01),
        ("mobilenet_v3_small_100", 2_554_968, 56e6, 0.02),
        # darknet at 416 px, COCO: yolov3-tiny 5.56 BFLOPs, yolov2-tiny 5.41 BFLOPs (2 FLOPs per MAC)
        ("tiny_yolo_v3", 8_858_734, 5.56e9 / 2, 0.01),
        ("tiny_yolo_v2", None, 5.41e9 / 2, 0.01),
        # YOLO-LITE paper: 482 MFLOPs at 224 px, VOC
        ("yolo_lite", None, 482e6 / 2, 0.01),
    ],
)
def test_figures_match_published_numbers(
    name: str, params: int | None, macs: float, tolerance: float
) -> None:
    figures = model_figures(name)
    if params is not None:
        assert figures.params == params
    assert math.isclose(figures.macs, macs, rel_tol=tolerance), figures.macs
