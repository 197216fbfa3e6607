"""``edgecnn quantize`` end to end: convert, and with a dataset, report and gate.

:func:`run_quantize` loads the run once and then:

1. converts and checks the model (:func:`~edgecnn.quantize.convert.quantize_model`);
2. with ``data``: converts the same Keras model to float TFLite (``float.tflite`` in the
   report folder, spec embedded, the reference of the comparison), measures both
   (:func:`~edgecnn.quantize.report.compare_models`), names the worst layers for int8
   (:mod:`~edgecnn.quantize.debugger`, on up to ``debug_images`` images of the split), writes
   ``report.json`` and ``report.md``, and finally applies the ``max_drop`` gate, so a failed
   gate still leaves the model and the report to look at.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn._stderr import captured_stderr_fd
from edgecnn.data import load_split
from edgecnn.data.pipeline import iter_preprocessed
from edgecnn.errors import UserError
from edgecnn.evaluation.evaluator import check_split_fits
from edgecnn.outputs import check_output
from edgecnn.quantize.calibration import (
    check_calibration_fits,
    load_calibration_set,
    representative_dataset,
)
from edgecnn.quantize.convert import (
    CONVERTER_NOTICE,
    SPEC_FILE,
    IoType,
    Mode,
    QuantizeResult,
    check_model_file,
    check_options,
    convert_keras,
    load_keras_model,
    load_run_spec,
    quantize_model,
    traced,
    write_atomic,
)
from edgecnn.quantize.debugger import layer_errors, worst_layers
from edgecnn.quantize.metadata_writer import embed_spec
from edgecnn.quantize.report import (
    REPORT_JSON,
    REPORT_MD,
    ProgressFactory,
    check_gate,
    compare_models,
    no_progress,
    write_report,
)

FLOAT_REFERENCE = "float.tflite"


@dataclass(frozen=True)
class QuantizeOutcome:
    """What :func:`run_quantize` produced.

    Attributes:
        result: the converted model.
        report: the report (None without ``data``).
        report_dir: where ``report.json``, ``report.md`` and ``float.tflite`` are.
    """

    result: QuantizeResult
    report: dict[str, Any] | None = None
    report_dir: Path | None = None


def default_report_dir(out: str | Path) -> Path:
    """``models/x_int8.tflite`` -> ``models/x_int8_report``."""
    path = Path(out)
    return path.with_name(f"{path.stem}_report")


def run_quantize(
    model_path: str | Path,
    out: str | Path,
    calib: str | Path | None = None,
    mode: Mode = "int8",
    io: IoType | None = None,
    data: str | Path | None = None,
    split: str = "val",
    max_drop: float | None = None,
    report_dir: str | Path | None = None,
    top_layers: int = 5,
    debug_images: int = 32,
    latency_runs: int = 50,
    progress: ProgressFactory = no_progress,
    allow_calib_mismatch: bool = False,
) -> QuantizeOutcome:
    """Quantise a trained Keras model; with ``data``, report against float and apply the gate.

    Args:
        model_path: the ``.keras`` file (``spec.json`` next to it).
        out: the ``.tflite`` to write.
        calib: the calibration set folder (``int8`` only).
        mode: ``int8``, ``fp16``, ``dynamic`` or ``float``.
        io: input/output tensor type (default int8 for int8 models, else float).
        data: a data.yaml: measure the quantised model against float on ``split``.
        split: the split to measure on.
        max_drop: the gate: most points the primary metric (mAP50 or top-1 accuracy) may drop.
        report_dir: where to write the report (default :func:`default_report_dir`).
        top_layers: how many worst layers to name.
        debug_images: images of ``split`` the layer statistics are measured on.
        latency_runs: timed runs per model for the report's latency (0 skips it).
        progress: a :data:`~edgecnn.quantize.report.ProgressFactory` (the CLI's progress bar).
        allow_calib_mismatch: use a calibration set built from data with other classes than
            the model's (:func:`~edgecnn.quantize.calibration.check_calibration_fits`) anyway.

    Raises:
        UserError: bad options, spec or calibration set, a calibration set built for other
            classes; see :func:`quantize_model`.
        ModelError: unreadable or unconvertible model, float ops left in an int8 model.
        QualityGateError: the gate failed (after the model and report were written).
    """
    if max_drop is not None and data is None:
        raise UserError("--max-drop needs --data (the gate compares float and quantised on a dataset)")
    if report_dir is not None and data is None:
        raise UserError("--report needs --data (the report measures on a dataset)")
    check_options(mode, io)
    check_model_file(model_path)
    if mode == "int8" and calib is None:
        raise UserError("--mode int8 needs --calib calibration/NAME (build one with `edgecnn calib build`)")
    if mode != "int8" and calib is not None:
        raise UserError(f"--calib is for --mode int8 only: a {mode} model is not calibrated (drop --calib)")
    inputs = (model_path, Path(model_path).with_name(SPEC_FILE), calib, data)
    check_output(out, "--out", "file", inputs)
    folder = Path(report_dir) if report_dir is not None else default_report_dir(out)
    if data is not None:
        check_output(folder, "--report", "dir", inputs)
        for name in (FLOAT_REFERENCE, REPORT_JSON, REPORT_MD):  # replaced in there after the work
            check_output(folder / name, "--report", "file", inputs)
    spec = load_run_spec(model_path)
    calibration = load_calibration_set(calib) if calib is not None and mode == "int8" else None
    val = None
    if data is not None:  # fail on a bad dataset, or one the model does not fit, before the slow work
        val = load_split(data, split)
        check_split_fits(val, spec, str(data))
    matches = None
    if calibration is not None:
        matches = check_calibration_fits(calibration, spec, model_path, allow_calib_mismatch)
    model = load_keras_model(model_path)
    with traced(model) as saved_model:
        total = len(calibration) if calibration is not None else 1
        with progress(f"converting ({mode})", total) as update:
            result = quantize_model(
                model_path,
                out,
                calib=calibration,
                mode=mode,
                io=io,
                model=model,
                spec=spec,
                progress=update,
                saved_model=saved_model,
            )
        if data is None or val is None:
            return QuantizeOutcome(result)

        float_path = folder / FLOAT_REFERENCE
        with progress("converting the float reference", 1) as update:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(float_path, embed_spec(convert_keras(saved_model, "float", "float"), spec))
            update(1)
        errors = None
        if mode == "int8" and calibration is not None and top_layers > 0:

            def samples() -> Iterator[list[np.ndarray]]:
                for tensor, _, _ in itertools.islice(iter_preprocessed(val, spec.input), debug_images):
                    yield [tensor]

            progress_bar = progress("layer statistics (QuantizationDebugger)", len(calibration))
            with progress_bar as update, captured_stderr_fd(CONVERTER_NOTICE):
                errors = layer_errors(
                    saved_model, representative_dataset(calibration, spec.input, update), samples
                )
    report = compare_models(float_path, result.path, data, split, latency_runs, progress, loaded=val)
    report["mode"] = mode
    report["report_dir"] = str(folder)
    if calibration is not None:
        report["calibration"] = {
            "path": str(calibration.root),
            "images": len(calibration),
            "manifest_sha256": calibration.manifest_sha256,
            "source": calibration.record.source if calibration.record is not None else None,
            "matches_model": matches,
        }
    if errors is not None:
        report["worst_layers"] = [e.to_dict() for e in worst_layers(errors, top_layers)]
    try:
        check_gate(report, max_drop)
    finally:
        write_report(report, folder)
    return QuantizeOutcome(result, report, folder)
