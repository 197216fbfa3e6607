"""The model registry: one decorator, one :class:`ModelInfo` per public variant.

Modelled on timm's registry: each family has one private builder with a full docstring, and
each public variant is a one-line function named ``family_size_width`` registered by
:func:`register_model`, which records everything the model carries with it: the task, the
default input size and colour/normalisation (an :class:`~edgecnn.runtime.spec.InputSpec`),
and for detectors the head layout, strides, anchors per scale and default anchors.

Registering and listing models does not import TensorFlow (importing Keras takes about 6 s
here): family modules import Keras inside their builders, so ``edgecnn models`` and
:func:`list_models` stay instant and only :func:`build_model` pays for it.

Example:

>>> from edgecnn.architectures import build_model, get_model_info
>>> info = get_model_info("tiny_yolo_v3")
>>> model = build_model("tiny_yolo_v3", num_classes=3, input_size=320)  # doctest: +SKIP
>>> spec = info.model_spec(["cat", "dog", "bird"], input_size=320)
>>> spec.output.strides
[16, 32]
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from edgecnn.errors import UserError
from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec

if TYPE_CHECKING:
    import keras

Task = Literal["classify", "detect"]
Layout = Literal["yolo_v2", "yolo_v3", "classes"]
Anchors = Sequence[Sequence[tuple[float, float]]]

# Pixel normalisations, in 0..255 units: x = (pixel - mean) / std.
MOBILENET_NORM = ((127.5,), (127.5,))  # keras.applications MobileNets: [-1, 1]
UNIT_NORM = ((0.0,), (255.0,))  # YOLO and the small CIFAR/MNIST nets: [0, 1]
#: Centre offset scale of every zoo detector (``OutputSpec.xy_scale``): a box centre may sit up to
#: half a cell outside the cell that predicts it, so the two nearest neighbouring cells learn
#: each box too (YOLOv5's assignment: three times the positives, faster training).
DETECT_XY_SCALE = 2.0


@dataclass(frozen=True)
class ModelInfo:
    """Everything the registry knows about one named variant, without building it.

    Args:
        name: registry name, ``family_size_width`` (``mobilenet_v2_035``).
        family: the builder family (``mobilenet_v2``); one int8 conversion test per family.
        task: ``"classify"`` or ``"detect"``.
        input_size: default ``(height, width)`` in pixels.
        channels: default input channels (1 grey, 3 colour).
        width: default width multiplier passed to the family builder.
        mean: per-channel mean in 0..255 units (1 value or ``channels`` values).
        std: per-channel std in 0..255 units.
        color_order: channel order the model expects.
        layout: output layout, ``classes`` for classifiers, ``yolo_v2`` or ``yolo_v3``.
        strides: detection strides, ascending (one output tensor per stride, same order).
        num_anchors: anchors per scale (detectors).
        anchors: default anchors per scale, ``(w, h)`` in pixels at ``input_size``.
        class_activation: activation still to apply to class outputs (``OutputSpec``).
        reference_classes: classes of the dataset the design was published on (ImageNet
            1000, CIFAR/MNIST 10, COCO 80); ``edgecnn models`` reports figures at this count.
        min_input_size: smallest accepted input side.
        input_multiple: input sides must be multiples of this (the largest stride).
        test: a tiny variant for tests, hidden from :func:`list_models` by default.
        description: one line, from the variant's docstring.
        builder: the registered variant function (``builder(num_classes=..., input_shape=...,
            width=..., num_anchors=..., name=..., **kwargs)``).
    """

    name: str
    family: str
    task: Task
    input_size: tuple[int, int]
    channels: int = 3
    width: float = 1.0
    mean: tuple[float, ...] = UNIT_NORM[0]
    std: tuple[float, ...] = UNIT_NORM[1]
    color_order: Literal["RGB", "BGR"] = "RGB"
    layout: Layout = "classes"
    strides: tuple[int, ...] = ()
    num_anchors: int = 0
    anchors: tuple[tuple[tuple[float, float], ...], ...] = ()
    class_activation: Literal["sigmoid", "softmax", "none"] = "softmax"
    reference_classes: int = 1000
    min_input_size: int = 32
    input_multiple: int = 1
    test: bool = False
    description: str = ""
    builder: Callable[..., keras.Model] | None = field(default=None, repr=False, compare=False)

    # -- specs ---------------------------------------------------------------------------------

    def resolve_input_size(self, input_size: int | Sequence[int] | None = None) -> tuple[int, int]:
        """Return ``(height, width)`` for ``input_size`` (an int, ``(h, w)`` or None: default).

        Raises:
            UserError: the size is below :attr:`min_input_size` or not a multiple of
                :attr:`input_multiple`.
        """
        if input_size is None:
            return self.input_size
        if isinstance(input_size, int):
            size = (input_size, input_size)
        else:
            dims = tuple(int(v) for v in input_size)
            if len(dims) != 2:
                raise UserError(
                    f"{self.name}: input_size must be an int or (height, width), got {input_size!r}"
                )
            size = (dims[0], dims[1])
        if min(size) < self.min_input_size:
            raise UserError(
                f"{self.name}: input size {size} is below the minimum of {self.min_input_size} px"
            )
        if any(v % self.input_multiple for v in size):
            raise UserError(
                f"{self.name}: input size {size} must be a multiple of {self.input_multiple} "
                "(the largest stride)"
            )
        return size

    def input_spec(
        self, input_size: int | Sequence[int] | None = None, channels: int | None = None
    ) -> InputSpec:
        """The :class:`InputSpec` (size, colour order, normalisation) for this variant."""
        h, w = self.resolve_input_size(input_size)
        ch = channels or self.channels
        return InputSpec(
            width=w,
            height=h,
            channels=ch,
            color_order=self.color_order,
            mean=_per_channel(self.mean, ch),
            std=_per_channel(self.std, ch),
        )

    def default_anchors(
        self, input_size: int | Sequence[int] | None = None
    ) -> list[list[tuple[float, float]]]:
        """Default anchors per scale, in pixels, scaled from the default input size to ``input_size``."""
        h, w = self.resolve_input_size(input_size)
        sy, sx = h / self.input_size[0], w / self.input_size[1]
        return [[(round(aw * sx, 2), round(ah * sy, 2)) for aw, ah in scale] for scale in self.anchors]

    def check_anchors(self, anchors: Anchors) -> list[list[tuple[float, float]]]:
        """Validate user anchors (one list of ``(w, h)`` per scale, same count per scale)."""
        if self.task != "detect":
            raise UserError(f"{self.name} is a classifier: it takes no anchors")
        scales = [[(float(a[0]), float(a[1])) for a in scale] for scale in anchors]
        if len(scales) != len(self.strides):
            raise UserError(
                f"{self.name} has {len(self.strides)} output scale(s) (strides {list(self.strides)}), "
                f"got anchors for {len(scales)}"
            )
        counts = {len(scale) for scale in scales}
        if len(counts) != 1 or 0 in counts:
            raise UserError(
                f"{self.name}: every scale needs the same, non-zero number of anchors, got {counts}"
            )
        if any(v <= 0 for scale in scales for pair in scale for v in pair):
            raise UserError(f"{self.name}: anchor sizes must be > 0 pixels")
        return scales

    def output_spec(
        self, anchors: Anchors | None = None, input_size: int | Sequence[int] | None = None
    ) -> OutputSpec:
        """The :class:`OutputSpec` for this variant.

        Args:
            anchors: per scale ``(w, h)`` pairs in pixels at the model's input size (from the
                anchor k-means); None uses :meth:`default_anchors` at ``input_size``.
            input_size: the input size the model is built at (default: the variant's).
        """
        if self.task == "classify":
            if anchors is not None:
                raise UserError(f"{self.name} is a classifier: it takes no anchors")
            return OutputSpec(layout="classes", class_activation=self.class_activation)
        scales = self.check_anchors(anchors) if anchors is not None else self.default_anchors(input_size)
        return OutputSpec(
            layout=self.layout,
            anchors=scales,
            strides=list(self.strides),
            class_activation=self.class_activation,
            xy_scale=DETECT_XY_SCALE,
        )

    def model_spec(
        self,
        labels: Sequence[str],
        input_size: int | Sequence[int] | None = None,
        anchors: Anchors | None = None,
        channels: int | None = None,
    ) -> ModelSpec:
        """A complete :class:`ModelSpec` for this variant trained on ``labels``."""
        return ModelSpec(
            name=self.name,
            task=self.task,
            labels=list(labels),
            input=self.input_spec(input_size, channels),
            output=self.output_spec(anchors, input_size),
        )

    def output_shapes(
        self, num_classes: int, input_size: int | Sequence[int] | None = None, num_anchors: int | None = None
    ) -> list[tuple[int, ...]]:
        """Expected output shapes at batch 1: ``[(1, C)]`` or one ``(1, H, W, A*(5+C))`` per stride."""
        if self.task == "classify":
            return [(1, num_classes)]
        h, w = self.resolve_input_size(input_size)
        a = num_anchors or self.num_anchors
        return [(1, h // s, w // s, a * (5 + num_classes)) for s in self.strides]

    # -- building ------------------------------------------------------------------------------

    def build(
        self,
        num_classes: int,
        input_size: int | Sequence[int] | None = None,
        width: float | None = None,
        anchors: Anchors | None = None,
        num_anchors: int | None = None,
        channels: int | None = None,
        **kwargs: Any,
    ) -> keras.Model:
        """Build this variant; see :func:`build_model` for the arguments."""
        if self.builder is None:
            raise UserError(f"{self.name} has no builder")
        if num_classes < 1:
            raise UserError(f"num_classes must be >= 1, got {num_classes}")
        h, w = self.resolve_input_size(input_size)
        ch = channels or self.channels
        if ch not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {ch}")
        if width is not None and width <= 0:
            raise UserError(f"width must be > 0, got {width}")
        if num_anchors is not None and num_anchors < 1:
            raise UserError(f"num_anchors must be >= 1, got {num_anchors}")
        args: dict[str, Any] = {
            "num_classes": num_classes,
            "input_shape": (h, w, ch),
            "width": width or self.width,
            "name": self.name,
        }
        if self.task == "detect":
            if anchors is not None:
                count = len(self.check_anchors(anchors)[0])
                if num_anchors is not None and num_anchors != count:
                    raise UserError(f"num_anchors={num_anchors} does not match {count} anchors per scale")
                num_anchors = count
            args["num_anchors"] = num_anchors or self.num_anchors
        elif anchors is not None or num_anchors is not None:
            raise UserError(f"{self.name} is a classifier: it takes no anchors")
        return self.builder(**args, **kwargs)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    task: Task,
    input_size: int | tuple[int, int],
    **settings: Any,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Register a variant function under its own name with its settings.

    The decorated function is a one-liner that calls the family builder with the variant's
    fixed arguments; :func:`build_model` passes it ``num_classes``, ``input_shape``,
    ``width``, ``name`` (and ``num_anchors`` for detectors) resolved from the settings.
    The returned callable is :meth:`ModelInfo.build` of the new entry, so
    ``mobilenet_v2_035(num_classes=10)`` works like ``build_model("mobilenet_v2_035", 10)``.

    Args:
        family: builder family name.
        task: ``"classify"`` or ``"detect"``.
        input_size: default input size, an int or ``(height, width)``.
        **settings: any other :class:`ModelInfo` field (``width``, ``strides``, ...).

    Example:

    >>> @register_model(family="lenet", task="classify", input_size=28, channels=1)  # doctest: +SKIP
    ... def lenet(**kwargs):
    ...     '''LeNet-5 style, 28 px grey.'''
    ...     return _lenet(**kwargs)
    """

    def decorator(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        doc = inspect.getdoc(fn) or ""
        if settings.get("anchors"):
            settings["anchors"] = tuple(tuple(tuple(a) for a in scale) for scale in settings["anchors"])
        if task == "detect":
            settings.setdefault("input_multiple", max(settings.get("strides", (1,))))
        info = ModelInfo(
            name=name,
            family=family,
            task=task,
            input_size=size,
            description=doc.splitlines()[0] if doc else "",
            builder=fn,
            **settings,
        )
        _check_info(info)
        _REGISTRY[name] = info

        @functools.wraps(fn)
        def entry(num_classes: int, **kwargs: Any) -> keras.Model:
            return info.build(num_classes, **kwargs)

        return entry

    return decorator


def _check_info(info: ModelInfo) -> None:
    if info.task == "detect":
        if info.layout not in ("yolo_v2", "yolo_v3") or not info.strides or info.num_anchors < 1:
            raise ValueError(f"{info.name}: detectors need a yolo layout, strides and num_anchors")
        if len(info.anchors) != len(info.strides) or any(len(s) != info.num_anchors for s in info.anchors):
            raise ValueError(f"{info.name}: default anchors must give num_anchors pairs per stride")
        info.output_spec()  # validates the layout rules of the spec (one scale for yolo_v2, ...)
    elif info.layout != "classes":
        raise ValueError(f"{info.name}: classifiers use the 'classes' layout")


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    return tuple(values) * channels if len(values) == 1 else tuple(values)


def _ensure_registered() -> None:
    # The family modules register their variants when imported.
    import edgecnn.architectures  # noqa: F401


def list_models(task: Task | None = None, include_test: bool = False) -> list[ModelInfo]:
    """Registered variants in registration order (grouped by family).

    Args:
        task: only ``"classify"`` or only ``"detect"`` models; None for all.
        include_test: also list the tiny ``*_test`` variants used by the test-suite.
    """
    _ensure_registered()
    if task not in (None, "classify", "detect"):
        raise UserError(f"unknown task {task!r}: use 'classify' or 'detect'")
    return [
        info
        for info in _REGISTRY.values()
        if (task is None or info.task == task) and (include_test or not info.test)
    ]


def get_model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``.

    Raises:
        UserError: unknown name; the message lists close matches.
    """
    _ensure_registered()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `edgecnn models` lists them"
        raise UserError(f"unknown model {name!r}{hint}") from None


def build_model(
    name: str,
    num_classes: int,
    input_size: int | Sequence[int] | None = None,
    width: float | None = None,
    anchors: Anchors | None = None,
    num_anchors: int | None = None,
    channels: int | None = None,
    **kwargs: Any,
) -> keras.Model:
    """Build a registered model as a functional ``keras.Model`` with random weights.

    Args:
        name: registry name (``edgecnn models`` lists them).
        num_classes: number of classes.
        input_size: an int or ``(height, width)``; None: the variant's default. Detectors
            need multiples of their largest stride.
        width: width multiplier (MobileNet ``alpha``); None: the variant's.
        anchors: detectors only, per scale ``(w, h)`` pixel pairs; only their count per scale
            shapes the model (the spec from :meth:`ModelInfo.output_spec` carries them).
        num_anchors: detectors only, anchors per scale when ``anchors`` is not given.
        channels: 1 (grey) or 3; None: the variant's.
        **kwargs: family-specific options (``dropout``, ``stages`` ...), see the builders.

    Returns:
        The model. Classifiers output ``(batch, num_classes)`` logits; detectors one raw
        ``(batch, H, W, A*(5+C))`` tensor per stride, strides ascending.

    Raises:
        UserError: unknown name or invalid argument.

    Example:

    >>> model = build_model("mobilenet_v2_035", num_classes=5, input_size=96)  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 5)
    """
    return get_model_info(name).build(
        num_classes,
        input_size=input_size,
        width=width,
        anchors=anchors,
        num_anchors=num_anchors,
        channels=channels,
        **kwargs,
    )
