"""What an interpreter says about one input or output tensor, without importing an interpreter.

:class:`TensorInfo` is shared by :class:`~edgecnn.runtime.interpreter.TFLiteModel`, the
child-process model check (:mod:`edgecnn.runtime.probe`) and its parent
(:mod:`edgecnn.runtime.validate`). It lives apart from the interpreter module so that the
check imports neither OpenCV nor pydantic: numpy is imported only when interpreter details
are read, which only happens where an interpreter (and so numpy) is loaded anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from edgecnn.errors import ModelError

#: Integer tensor types the runtime quantises to, with their value ranges.
QUANTIZED_DTYPES: dict[str, tuple[int, int]] = {"int8": (-128, 127), "uint8": (0, 255)}


@dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor: name, interpreter index, shape, dtype name and per-tensor
    quantisation (``scale`` 0 means not quantised)."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        """True for int8/uint8 tensors."""
        return self.dtype in QUANTIZED_DTYPES

    @property
    def effective_scale(self) -> float:
        """The scale to (de)quantise with: an integer tensor without parameters counts as scale 1."""
        return self.scale or 1.0

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> TensorInfo:
        """Build from an entry of ``Interpreter.get_input_details()`` / ``get_output_details()``."""
        import numpy as np  # loaded already by any interpreter that produced ``details``

        params = details.get("quantization_parameters") or {}
        scales = list(np.asarray(params.get("scales", ())).ravel())
        zero_points = list(np.asarray(params.get("zero_points", ())).ravel())
        if len(scales) > 1:
            raise ModelError(
                f"tensor {details['name']!r} is quantised per channel; edgecnn supports per-tensor "
                "quantisation of inputs and outputs only"
            )
        return cls(
            name=str(details["name"]),
            index=int(details["index"]),
            shape=tuple(int(d) for d in details["shape"]),
            dtype=np.dtype(details["dtype"]).name,
            scale=float(scales[0]) if scales else 0.0,
            zero_point=int(zero_points[0]) if zero_points else 0,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "shape": list(self.shape)}
