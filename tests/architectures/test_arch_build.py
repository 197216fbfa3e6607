"""Building every registered model: shapes, figures, layer names, head initialisation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest

from edgecnn.architectures import build_model, count_macs, get_model_info, list_models
from edgecnn.architectures.stats import FIGURES

pytestmark = pytest.mark.tf

ALL = [info.name for info in list_models(include_test=True)]
TEST_VARIANTS = [info.name for info in list_models(include_test=True) if info.test]
DETECTOR_TESTS = [n for n in TEST_VARIANTS if get_model_info(n).task == "detect"]


def _auto_name(class_name: str) -> str:
    # Keras' default layer name for a class (keras.src.utils.naming.to_snake_case).
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@pytest.mark.parametrize("name", ALL)
def test_default_build_matches_registry_and_figures(name: str) -> None:
    info = get_model_info(name)
    model = build_model(name, num_classes=info.reference_classes)
    assert model.name == name
    assert [tuple(t.shape) for t in model.inputs] == [(None, *info.input_size, info.channels)]
    assert model.inputs[0].name == "image"
    shapes = [(None, *shape[1:]) for shape in info.output_shapes(info.reference_classes)]
    assert [tuple(t.shape) for t in model.outputs] == shapes
    # The cached table used by `edgecnn models` is exactly what the model measures.
    assert (model.count_params(), count_macs(model)) == FIGURES[name]
    # Every layer is explicitly named (no Keras default like "conv2d_3"), and there are no raw
    # ops outside layers (x + 3.0 on a KerasTensor would add an unnamed operation).
    assert len(model.operations) == len(model.layers)
    unnamed = [
        layer.name
        for layer in model.layers
        if re.fullmatch(rf"{_auto_name(type(layer).__name__)}(_\d+)?", layer.name)
    ]
    assert not unnamed


@pytest.mark.parametrize("name", DETECTOR_TESTS)
@pytest.mark.parametrize("num_classes", [1, 4])
def test_detector_head_is_linear_with_prior_biases(
    name: str, num_classes: int, forward: Callable[..., list[np.ndarray]]
) -> None:
    info = get_model_info(name)
    model = build_model(name, num_classes=num_classes)
    heads = [model.get_layer(f"output_s{s}") for s in info.strides]
    assert [h.output for h in heads] == list(model.outputs)
    for head in heads:
        assert head.get_config()["activation"] == "linear"
        bias = np.asarray(head.bias).reshape(info.num_anchors, 5 + num_classes)
        np.testing.assert_allclose(bias[:, :4], 0.0)
        np.testing.assert_allclose(bias[:, 4], math.log(0.01 / 0.99), rtol=1e-6)
        expected_cls = 0.0 if info.layout == "yolo_v2" else math.log(0.6 / (num_classes - 0.99))
        np.testing.assert_allclose(bias[:, 5:], expected_cls, rtol=1e-6)
    # With the prior, random images start with a low objectness almost everywhere.
    images = np.random.default_rng(0).uniform(0, 1, (2, *info.input_size, info.channels)).astype("float32")
    for out in forward(model, images):
        obj = out.reshape(*out.shape[:3], info.num_anchors, 5 + num_classes)[..., 4]
        assert (1 / (1 + np.exp(-obj))).mean() < 0.1


@pytest.mark.parametrize(
    ("name", "kwargs", "shapes"),
    [
        ("tiny_yolo_v3_test", {"input_size": (64, 128), "anchors": [[(4, 4)] * 4, [(9, 9)] * 4]},
         [(None, 4, 8, 4 * 7), (None, 2, 4, 4 * 7)]),
        ("mobilenet_v2_yolo_test", {"input_size": (96, 64), "num_anchors": 2},
         [(None, 6, 4, 14), (None, 3, 2, 14)]),
        ("tiny_yolo_v2_test", {"input_size": 96, "num_anchors": 1}, [(None, 3, 3, 7)]),
        ("mobilenet_v1_test", {"input_size": (48, 80), "channels": 1}, [(None, 2)]),
        ("lenet", {"input_size": 32, "channels": 3, "width": 0.5}, [(None, 2)]),
    ],
)  # fmt: skip
def test_overrides_change_the_model(name: str, kwargs: dict, shapes: list[tuple]) -> None:
    model = build_model(name, num_classes=2, **kwargs)
    assert [tuple(t.shape) for t in model.outputs] == shapes
    size = kwargs["input_size"]
    h, w = (size, size) if isinstance(size, int) else size
    assert tuple(model.inputs[0].shape) == (None, h, w, kwargs.get("channels", 3))


def test_width_scales_the_filters() -> None:
    base = build_model("tiny_yolo_v3", num_classes=2, input_size=64)
    half = build_model("tiny_yolo_v3", num_classes=2, input_size=64, width=0.5)
    assert base.get_layer("block7_conv").filters == 1024
    assert half.get_layer("block7_conv").filters == 512
    assert 0.2 < half.count_params() / base.count_params() < 0.3  # ~ width squared


def test_variant_functions_build_like_build_model() -> None:
    from edgecnn.architectures.tiny_yolo import tiny_yolo_v2_test

    direct = tiny_yolo_v2_test(num_classes=3)
    registry = build_model("tiny_yolo_v2_test", num_classes=3)
    assert direct.count_params() == registry.count_params()
    assert direct.output_shape == registry.output_shape


@pytest.mark.parametrize(("size", "alpha", "minimalistic"), [("small", 0.75, False), ("large", 1.0, True)])
def test_mobilenet_v3_computes_the_same_function_as_keras_applications(
    size: str, alpha: float, minimalistic: bool
) -> None:
    import keras

    ctor = keras.applications.MobileNetV3Small if size == "small" else keras.applications.MobileNetV3Large
    ref = ctor(
        input_shape=(64, 64, 3), alpha=alpha, minimalistic=minimalistic, weights=None, classes=7,
        include_preprocessing=False, classifier_activation=None, dropout_rate=0.0,
    )  # fmt: skip
    name = f"mobilenet_v3_{size}_{'minimal_100' if minimalistic else '100'}"
    ours = build_model(name, num_classes=7, input_size=64, width=alpha)
    assert ours.count_params() == ref.count_params()
    rng = np.random.default_rng(0)
    weights = [
        rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0.0, 0.1, w.shape)
        for w in ref.weights
    ]
    ref.set_weights(weights)
    # Same weights in the same order; Keras' 1x1 convolutions on the pooled map are Dense here.
    ours.set_weights([w.reshape(v.shape) for w, v in zip(weights, ours.weights, strict=True)])
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), ref(x, training=False), atol=1e-5)


def test_count_macs_definition() -> None:
    import keras
    from keras import layers

    x = keras.Input((8, 8, 2), name="image")
    y = layers.Conv2D(4, 3, padding="same", name="c")(x)  # 8*8 * 3*3*2*4 = 4608
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="d")(
        y
    )  # 4*4 * 3*3*4*2 = 1152
    y = layers.Conv2D(6, 1, groups=2, name="g")(y)  # 4*4 * 1*1*(8/2)*6 = 384
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.Dense(5, name="fc")(y)  # 4*4 * 6*5 = 480
    assert count_macs(keras.Model(x, y)) == 4608 + 1152 + 384 + 480

    z = layers.SeparableConv2D(4, 3, name="sep")(x)
    with pytest.raises(ValueError, match="sep"):
        count_macs(keras.Model(x, z))
