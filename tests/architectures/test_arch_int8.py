"""Every family converts to a full-integer int8 TFLite model with the spec's output shapes.

One conversion per family, on its tiny ``*_test`` variant (a new family is picked up from
the registry). Checked on the converted model: every tensor of every op is int8 or int32 (no
float kernels, no float fallback), the signature's outputs have the spec's shapes in the
spec's stride order, and the int8 model computes nearly what the Keras model computes
(after setting batch-norm statistics from the calibration images: at initialisation they
are 0 and 1, and a deep MobileNet's logits shrink to ~1e-10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgecnn.architectures import build_model, get_model_info, list_models

pytestmark = [pytest.mark.tf, pytest.mark.slow]

TEST_VARIANTS = [info.name for info in list_models(include_test=True) if info.test]
NUM_CLASSES = 10


@pytest.mark.parametrize("name", TEST_VARIANTS)
def test_family_converts_to_full_integer_int8(
    name: str,
    to_int8: Callable[[Any, np.ndarray], bytes],
    random_images: Callable[..., np.ndarray],
    forward: Callable[..., list[np.ndarray]],
    calibrate_batch_norm: Callable[..., None],
) -> None:
    import keras
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    keras.utils.set_random_seed(0)
    info = get_model_info(name)
    model = build_model(name, num_classes=NUM_CLASSES)
    samples = random_images(info, 8)
    calibrate_batch_norm(model, samples)
    blob = to_int8(model, samples)

    # Without the default XNNPACK delegate, so that the op list is the model's own ops.
    interp = Interpreter(
        model_content=blob, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    assert ops
    float_tensors = [
        (op["op_name"], tensors[i]["name"], np.dtype(tensors[i]["dtype"]).name)
        for op in ops
        for i in [*op["inputs"], *op["outputs"]]
        if i >= 0 and np.dtype(tensors[i]["dtype"]) not in (np.int8, np.int32)
    ]
    assert not float_tensors
    assert {op["op_name"] for op in ops}.isdisjoint({"DEQUANTIZE", "CUSTOM", "FLEX"})

    (inp,) = interp.get_input_details()
    spec = info.input_spec()
    assert inp["dtype"] == np.int8
    assert tuple(inp["shape"]) == (1, spec.height, spec.width, spec.channels)

    # Signature outputs keep the Keras order (ascending stride); get_output_details() may not.
    runner = interp.get_signature_runner()
    out_details = runner.get_output_details()
    keys = [f"output_{i}" for i in range(len(out_details))]
    assert [tuple(out_details[k]["shape"]) for k in keys] == info.output_shapes(NUM_CLASSES)
    assert all(out_details[k]["dtype"] == np.int8 for k in keys)

    # The int8 model approximates the float model on fresh images. Random deep MobileNets are
    # chaotic (an input change of 2 quantisation steps moves their logits by ~0.2 here), so
    # they only have to correlate; the shallow nets measured > 0.99.
    min_corr = 0.5 if "mobilenet" in info.family else 0.98
    images = random_images(info, 4, seed=1)
    scale, zero = inp["quantization"]
    got: list[list[np.ndarray]] = [[] for _ in keys]
    for image in images:
        q_image = np.clip(np.round(image[None] / scale + zero), -128, 127).astype(np.int8)
        results = runner(image=q_image)
        for i, key in enumerate(keys):
            o_scale, o_zero = out_details[key]["quantization"]
            got[i].append((results[key].astype(np.float32) - o_zero) * o_scale)
    expected = forward(model, images)
    for key, parts, want in zip(keys, got, expected, strict=True):
        result = np.concatenate(parts)
        corr = np.corrcoef(result.ravel(), want.ravel())[0, 1]
        assert corr > min_corr, (key, corr)
        assert np.abs(result - want).mean() < 0.2 * np.ptp(want), key
