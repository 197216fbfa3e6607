"""Which layers lose most to int8: TensorFlow Lite's ``QuantizationDebugger`` layer statistics.

The debugger converts the model once more in debug mode: after every quantised op it
inserts a ``NumericVerify`` op that compares the dequantised int8 result with the float
result of the same op fed the same (dequantised) inputs. Running it on some images gives,
per layer, the error statistics of that layer alone; :func:`worst_layers` ranks them by
``RMSE / scale``, the root-mean-square error in units of the output's quantisation step,
the measure of TensorFlow's "Inspecting quantization errors" guide. A plain rounding error
gives about ``1/sqrt(12) = 0.29``; layers well above that clip or have badly fitting
ranges (a wide range from a few outliers, so most values fall into few steps).

Workstation side: imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecnn.quantize.convert import configure_converter, import_tensorflow, new_converter

if TYPE_CHECKING:
    import keras

#: RMSE / scale of a layer whose only error is rounding to the nearest step (1/sqrt(12)).
ROUNDING_ONLY = 1.0 / math.sqrt(12.0)


@dataclass(frozen=True)
class LayerError:
    """The quantisation error of one layer's output, from the debugger.

    Attributes:
        op: TFLite op name (``CONV_2D`` ...).
        tensor: the output tensor's name (carries the Keras layer name).
        rmse_over_scale: root-mean-square error divided by the output's scale.
        rmse: root-mean-square error, float units.
        max_abs_error: largest absolute error, float units.
        mean_error: mean signed error (bias), float units.
        scale: the output's quantisation step.
        zero_point: the output's zero point.
    """

    op: str
    tensor: str
    rmse_over_scale: float
    rmse: float
    max_abs_error: float
    mean_error: float
    scale: float
    zero_point: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def layer_errors(
    model: keras.Model | str | Path,
    representative: Callable[[], Iterator[list[np.ndarray]]],
    debug_samples: Callable[[], Iterator[list[np.ndarray]]],
) -> list[LayerError]:
    """Per-layer int8 errors of ``model`` quantised with ``representative``, measured on ``debug_samples``.

    Args:
        model: the float Keras model, or its SavedModel folder (:func:`~edgecnn.quantize.convert.traced`).
        representative: the calibration data (as given to the converter).
        debug_samples: the images to measure on (float input tensors, one list per sample).

    Returns:
        One :class:`LayerError` per quantised layer, in graph order.
    """
    tf = import_tensorflow()
    converter = configure_converter(new_converter(model), "int8", "float", representative)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_samples)
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale = float(row["scale"])
        rmse = math.sqrt(max(float(row["mean_squared_error"]), 0.0))
        rows.append(
            LayerError(
                op=row["op_name"],
                tensor=row["tensor_name"],
                rmse_over_scale=rmse / scale if scale > 0 else math.inf,
                rmse=rmse,
                max_abs_error=float(row["max_abs_error"]),
                mean_error=float(row["mean_error"]),
                scale=scale,
                zero_point=int(float(row["zero_point"])),
            )
        )
    return rows


def worst_layers(errors: list[LayerError], top: int = 5) -> list[LayerError]:
    """The ``top`` layers with the largest RMSE / scale, worst first."""
    ranked = [e for e in errors if math.isfinite(e.rmse_over_scale)]
    return sorted(ranked, key=lambda e: -e.rmse_over_scale)[:top]
