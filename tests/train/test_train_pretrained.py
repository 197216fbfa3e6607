"""ImageNet weights go into the backbone layer by layer, by Keras' layer names.

The download itself cannot happen here (no network; the offline error is tested in
test_train_fit.py), so the Keras application is built with random weights in its place:
what is tested is that every backbone layer of our model receives the application's weights.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tf


@pytest.mark.parametrize(
    ("name", "family_app"), [("mobilenet_v2_test", "MobileNetV2"), ("mobilenet_v2_yolo_test", "MobileNetV2")]
)
def test_backbone_layers_receive_the_application_weights(
    name: str, family_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keras = pytest.importorskip("keras")

    from edgecnn.architectures import build_model, get_model_info
    from edgecnn.train import pretrained

    built: list[keras.Model] = []

    def fake_app(**kwargs: object) -> keras.Model:
        assert kwargs.pop("weights") == "imagenet" and kwargs["include_top"] is False
        keras.utils.set_random_seed(123)
        model = getattr(keras.applications, family_app)(weights=None, **kwargs)
        built.append(model)
        return model

    info = get_model_info(name)
    monkeypatch.setattr(pretrained, "_applications", lambda: {info.family: fake_app})
    keras.utils.set_random_seed(0)
    model = build_model(name, num_classes=3)
    copied = pretrained.load_imagenet_weights(model, info, info.width)
    reference = {layer.name: layer for layer in built[0].layers if layer.weights}
    assert copied == len(reference) > 50
    for layer in model.layers:
        if layer.name in reference:
            for ours, theirs in zip(layer.get_weights(), reference[layer.name].get_weights(), strict=True):
                np.testing.assert_array_equal(ours, theirs)
    head = model.get_layer("logits" if info.task == "classify" else "output_s32")
    assert head.name not in reference  # the head keeps its own initialisation


def test_grey_input_is_refused() -> None:
    pytest.importorskip("keras")
    from edgecnn.architectures import build_model, get_model_info
    from edgecnn.errors import UserError
    from edgecnn.train.pretrained import load_imagenet_weights

    info = get_model_info("mobilenet_v2_test")
    model = build_model("mobilenet_v2_test", num_classes=2, channels=1)
    with pytest.raises(UserError, match="3-channel"):
        load_imagenet_weights(model, info, info.width)
