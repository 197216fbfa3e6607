"""ImageNet weights for MobileNet backbones (``edgecnn train --weights imagenet``).

The MobileNet families of the model zoo name their layers exactly as ``keras.applications``
does (V1 and V2 are the Keras bodies; V3 is rebuilt with Keras' layer names). So the Keras
application is built with ``weights="imagenet"`` and ``include_top=False`` at the same width
and input size (Keras downloads the file once into ``~/.keras/models``), and its weights are
copied layer by layer, by name, wherever the shapes agree; the head stays random.

Only MobileNet families have ImageNet weights in Keras, for the widths Keras publishes
(V1: 0.25-1.0, V2: 0.35-1.4, V3: 0.75 and 1.0) and 3-channel inputs. Without network access
the download fails and the error says so in one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgecnn.architectures import ModelInfo
from edgecnn.errors import UserError

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)


def _applications() -> dict[str, Callable[..., Any]]:
    import keras

    apps = keras.applications
    return {
        "mobilenet_v1": lambda **kw: apps.MobileNet(**kw),
        "mobilenet_v2": lambda **kw: apps.MobileNetV2(**kw),
        "mobilenet_v2_yolo": lambda **kw: apps.MobileNetV2(**kw),
        "mobilenet_v3_small": lambda **kw: apps.MobileNetV3Small(include_preprocessing=False, **kw),
        "mobilenet_v3_large": lambda **kw: apps.MobileNetV3Large(include_preprocessing=False, **kw),
    }


#: Families with Keras ImageNet weights.
PRETRAINED_FAMILIES = (
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v2_yolo",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
)


def load_imagenet_weights(model: keras.Model, info: ModelInfo, width: float) -> int:
    """Copy Keras' ImageNet weights into the backbone of ``model``.

    Args:
        model: a freshly built model of the variant ``info``.
        info: its registry entry (the family decides the Keras application).
        width: the width multiplier the model was built with.

    Returns:
        The number of layers whose weights were copied.

    Raises:
        UserError: not a MobileNet family, a grey-scale input, a width or size Keras has no
            weights for, or the download failed (offline).
    """
    if info.family not in PRETRAINED_FAMILIES:
        raise UserError(
            f"--weights imagenet: {info.name} has no ImageNet weights; only MobileNet backbones do "
            f"({', '.join(PRETRAINED_FAMILIES)})"
        )
    shape = tuple(model.input_shape[1:])
    if shape[-1] != 3:
        raise UserError(f"--weights imagenet needs a 3-channel input, {info.name} has {shape[-1]}")
    minimalistic = "minimal" in info.name
    kwargs: dict[str, Any] = {
        "input_shape": shape,
        "alpha": width,
        "include_top": False,
        "weights": "imagenet",
    }
    if info.family.startswith("mobilenet_v3"):
        kwargs["minimalistic"] = minimalistic
    build = _applications()[info.family]
    chatter = io.StringIO()
    try:
        # Keras prints "Downloading data from ..." and may warn about the input size; the
        # warnings are logged on success, and dropped when the one-line error says it all.
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reference = build(**kwargs)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(
            f"--weights imagenet: Keras has no ImageNet weights for {info.name}: {first}"
        ) from None
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on network errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"--weights imagenet: cannot download the ImageNet weights for {info.name} (offline? Keras keeps "
            f"them in ~/.keras/models once downloaded): {first}"
        ) from None
    for warning in caught:
        logger.warning("--weights imagenet: %s", " ".join(str(warning.message).split()))
    copied = 0
    source = {layer.name: layer for layer in reference.layers if layer.weights}
    for layer in model.layers:
        ref = source.get(layer.name)
        if ref is None or not layer.weights:
            continue
        values = ref.get_weights()
        if [tuple(w.shape) for w in layer.weights] != [v.shape for v in values]:
            continue
        layer.set_weights(values)
        copied += 1
    if copied == 0:
        raise UserError(f"--weights imagenet: no layer of {info.name} matches Keras' {info.family} backbone")
    logger.info("loaded ImageNet weights into %d layers of %s", copied, info.name)
    return copied
