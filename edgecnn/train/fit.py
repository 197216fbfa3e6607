"""The training loop behind ``edgecnn train``: :func:`train` fills a run directory.

A run directory holds::

    model.keras         the best weights by validation (the EMA weights when ema is on);
                        stock Keras layers only: loads with keras.models.load_model
    spec.json           the ModelSpec: input size, normalisation, colour order, labels,
                        anchors, output layout
    labels.txt          class names, one per line
    metrics.json        validation metrics of model.keras, the keys of `edgecnn eval --json`
    history.json        one record per epoch (edgecnn.train.history)
    curves.png          losses and validation metrics per epoch
    train_batch.jpg     the first training batch as the model sees it, labels drawn
    val_pred.jpg        16 validation images: ground truth and the best model's results
    pr_curve.png        detectors: precision-recall per class of the best model (as eval --plots)
    confusion_matrix.png  the best model's confusion matrix on the validation split
    train_config.json   the resolved TrainConfig (read back by --resume)
    last.npz            last epoch's weights, EMA weights and optimiser state (for --resume)
    train_state.json    epochs done, best epoch and value

The loop is a ``tf.function`` train step inside a Python epoch loop, not ``model.fit``: the
detection loss takes a dict of targets and a list of outputs, and resuming needs the
optimiser's state and the epoch, which this loop saves itself. One ``tf.data`` pipeline
serves the whole run (decoded images stay cached); each pass over it is an epoch with a new
order and new augmentation, drawn from seeds that ``tf.data`` advances once per pass. A
resumed run creates and drops one pass per finished epoch to bring those seeds to where
the interrupted run was, so epoch ``e`` sees the same batches either way; with
``deterministic`` on (TensorFlow's op determinism) the weights are bit-identical too.

Validation (every ``val_every`` epochs and after the last) runs
:func:`edgecnn.evaluation.evaluate_model` on the Keras model, the same path as ``edgecnn
eval``. The monitored value ("fitness") is Ultralytics': ``0.1 mAP50 + 0.9 mAP50-95`` for
detectors, accuracy for classifiers. ``model.keras`` is saved when it improves; training
stops early after ``patience`` epochs without improvement.

What C++ code writes to file descriptor 2 during the run goes through a live line filter
(:func:`edgecnn._stderr.progress_safe_stderr_fd`): TensorFlow's known-harmless notices
(:data:`TRAINING_NOISE`) are dropped, and every other line comes out at once, on a line of
its own above the progress bar (:meth:`ProgressBar.print_line`; libjpeg's "Corrupt JPEG
data" once per message, with a count at the end). The filter sits here, in :func:`train`
around the whole run, rather than in ``edgecnn train``, so that the Python API gets it too;
and around the whole run rather than the epoch loop alone because the same writers run just
before the loop (the training-batch picture decodes images) and after it (the final
evaluation), and one window counts each message once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn import __version__
from edgecnn._stderr import TF_NOTICE, progress_safe_stderr_fd
from edgecnn.architectures import ModelInfo, get_model_info
from edgecnn.data import Split, check_splits_agree, load_split
from edgecnn.errors import UserError
from edgecnn.evaluation.plots import CONFUSION_FILE, PR_CURVE_FILE
from edgecnn.evaluation.predictor import SPEC_FILE
from edgecnn.runtime.spec import ModelSpec
from edgecnn.train.callbacks import Callback, EarlyStopping, ProgressBar
from edgecnn.train.config import CONFIG_FILE, DEFAULT_CLASSIFIER, DEFAULT_DETECTOR, TrainConfig
from edgecnn.train.history import CURVES_FILE, HISTORY_FILE, load_history, plot_history, save_history
from edgecnn.train.preview import TRAIN_BATCH_FILE, VAL_PRED_FILE
from edgecnn.train.rundir import RunDir

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "last.npz"
STATE_FILE = "train_state.json"
#: Files that make a directory a run directory (refused as --out unless --exist-ok / --resume).
RUN_FILES = (STATE_FILE, CHECKPOINT_FILE, MODEL_FILE)
#: Every file a run writes (what --exist-ok replaces).
RUN_OUTPUTS = (
    *RUN_FILES,
    SPEC_FILE,
    LABELS_FILE,
    METRICS_FILE,
    HISTORY_FILE,
    CURVES_FILE,
    TRAIN_BATCH_FILE,
    VAL_PRED_FILE,
    PR_CURVE_FILE,
    CONFUSION_FILE,
    CONFIG_FILE,
)

#: What TensorFlow writes to fd 2 during a run that says nothing to a user: its start-up
#: notices, and grappler's "remapper failed ... LeakyReluGrad" (the pass gives up fusing the
#: gradient of a LeakyReLU; the step runs unfused, with the same result). Other lines pass.
TRAINING_NOISE = re.compile(
    "|".join(
        (
            TF_NOTICE.pattern,
            r"^E\d{4} [\d:.]+ +\d+ meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: "
            r"Mutation::Apply error: fanout '[^']*LeakyReluGrad' exist for missing node",
        )
    )
)


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        run_dir: the run directory.
        model_path: ``run_dir/model.keras``.
        spec: the model spec (also in ``spec.json``).
        metrics: validation metrics of the saved model (``metrics.json``).
        history: one record per epoch (``history.json``).
        best_epoch: the epoch (1-based) whose weights were saved.
        epochs_run: epochs completed, resumed ones included.
        stopped_early: True when patience ran out.
        seconds: wall time of this call.
    """

    run_dir: Path
    model_path: Path
    spec: ModelSpec
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`train`; the message says what the run directory kept and how
    to go on. Still a ``KeyboardInterrupt`` for code that catches Ctrl-C; the CLI prints it."""


@dataclass
class _Saved:
    """How far a run has got on disk: what an interruption leaves behind."""

    run: Path
    data: Path | None = None
    epochs: int = 0
    done: int = 0  # epochs whose checkpoint and state are written
    best_epoch: int = 0
    finished: bool = False

    def interrupted(self) -> str:
        """One line for a user who pressed Ctrl-C: what is kept and the command that goes on."""
        model = self.run / MODEL_FILE
        if self.finished:
            data = self.data if self.data is not None else "DATA_YAML"
            return (
                f"after the last epoch: {model} is the trained model (best epoch {self.best_epoch}), "
                f"but {METRICS_FILE} and {VAL_PRED_FILE} were not written; score it with "
                f"`edgecnn eval {model} --data {data}`"
            )
        if self.done == 0:
            return f"before the first epoch ended: nothing of this run is kept in {self.run}"
        kept = "epoch 1" if self.done == 1 else f"epochs 1-{self.done}"
        best = f"{model}: best epoch {self.best_epoch}" if self.best_epoch else "not validated yet"
        return (
            f"in epoch {self.done + 1} of {self.epochs}: {self.run} keeps {kept} ({best}); "
            f"continue with `edgecnn train --out {self.run} --resume`"
        )


# -- configuration --------------------------------------------------------------------------------


def resolve_model(config: TrainConfig, task: str) -> tuple[ModelInfo, float | None, int | tuple[int, int]]:
    """The variant, width and input size to train: the config's, or the default for ``task``.

    Raises:
        UserError: unknown model, or a model for the other task.
    """
    if config.model is None:
        name, width, size = DEFAULT_DETECTOR if task == "detect" else DEFAULT_CLASSIFIER
        info = get_model_info(name)
        return info, config.width or width, config.imgsz or size
    info = get_model_info(config.model)
    if info.task != task:
        raise UserError(f"{info.name} is a {info.task} model but the dataset is for {task}")
    h, w = info.input_size
    return info, config.width, config.imgsz or (h if h == w else (h, w))


def fitness(report: dict[str, Any]) -> float:
    """The monitored validation value: ``0.1 mAP50 + 0.9 mAP50-95`` (detect) or accuracy (classify)."""
    if report["task"] == "detect":
        return 0.1 * (report.get("map50") or 0.0) + 0.9 * (report.get("map50_95") or 0.0)
    return float(report["accuracy"])


def headline(report: dict[str, Any]) -> dict[str, float | None]:
    """The metrics a history record keeps from a validation report."""
    keys = ("map50", "map50_95") if report["task"] == "detect" else ("accuracy", "precision", "recall", "f1")
    return {k: report.get(k) for k in keys}


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def _load_resume(config: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    run = config.out
    for name in (CONFIG_FILE, STATE_FILE, CHECKPOINT_FILE, SPEC_FILE):
        if not (run / name).is_file():
            raise UserError(f"--resume: {run} has no {name}; nothing to resume")
    try:
        saved = TrainConfig.model_validate_json((run / CONFIG_FILE).read_text())
        state = json.loads((run / STATE_FILE).read_text())
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
            raise ValueError("no epoch count")
    except (ValueError, OSError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        files = f"{CONFIG_FILE} / {STATE_FILE}"
        raise UserError(f"--resume: {run} holds a damaged run ({files}: {first})") from None
    done = int(state["epoch"])
    epochs = config.epochs if "epochs" in config.model_fields_set else saved.epochs
    stopped_early = bool(state.get("finished")) and done < saved.epochs
    if "epochs" in config.model_fields_set and epochs <= done:
        raise UserError(
            f"--epochs {epochs}: the run in {run} has trained {done} epoch{'s' if done != 1 else ''} "
            f"already; pass more than {done} to train it on"
        )
    if stopped_early:
        raise UserError(
            f"--resume: the run in {run} stopped early at epoch {done} of {saved.epochs} (no better "
            f"validation for {saved.patience} epochs); nothing to resume: start a new run to train longer"
        )
    if state.get("finished") and epochs == done:
        raise UserError(
            f"--resume: the run in {run} is finished ({done} epochs); nothing to resume "
            f"(--resume --epochs N, N > {done}, trains it on)"
        )
    if saved.data is not None and not saved.data.is_file():
        raise UserError(
            f"--resume: the run in {run} trains on {saved.data} ({CONFIG_FILE}), which is not there "
            f"(moved, or a path relative to another working directory?)"
        )
    if epochs != saved.epochs:
        logger.info(
            "resuming %s at epoch %d: training on to %d epochs instead of %d (the learning rate follows "
            "the schedule of a %d-epoch run from here)",
            run, done + 1, epochs, saved.epochs, epochs,
        )  # fmt: skip
    return saved.model_copy(update={"resume": True, "out": run, "epochs": epochs}), state


def _record_new_length(config: TrainConfig, state: dict[str, Any]) -> None:
    """A resumed run trains to other epochs than it was started for: store them (a later
    ``--resume`` goes on to them) and mark a finished run unfinished again."""
    path = config.out / CONFIG_FILE
    saved = json.loads(path.read_text())
    if saved.get("epochs") == config.epochs:
        return
    _write_json(path, {**saved, "epochs": config.epochs})
    _write_json(config.out / STATE_FILE, {**state, "finished": False})


# -- the loop -------------------------------------------------------------------------------------


def _load_data(config: TrainConfig) -> tuple[Split, Split]:
    assert config.data is not None
    train_split = load_split(config.data, config.train_split, skip_bad=config.skip_bad)
    val_split = load_split(config.data, config.val_split, skip_bad=config.skip_bad)
    check_splits_agree({config.train_split: train_split, config.val_split: val_split}, config.data)
    return train_split, val_split


def _make_spec(config: TrainConfig, info: ModelInfo, size: Any, split: Split) -> ModelSpec:
    resize = config.resize or "letterbox"
    anchors = None
    if info.task == "detect" and config.anchors == "auto":
        from edgecnn.train.anchors import anchors_for_model

        input_spec = info.input_spec(size).model_copy(update={"resize": resize})
        try:
            fit = anchors_for_model(split, input_spec, len(info.strides), info.num_anchors, seed=config.seed)
            anchors = fit.anchors
            logger.info("k-means anchors: mean best IoU %.3f, BPR %.3f", fit.fitness, fit.bpr)
        except UserError as exc:
            logger.warning("keeping %s's default anchors: %s", info.name, exc)
    spec = info.model_spec(split.names, input_size=size, anchors=anchors)
    return spec.model_copy(
        update={
            "created_by": f"edgecnn {__version__} train",
            "input": spec.input.model_copy(update={"resize": resize}),
        }
    )


def _build_model(
    config: TrainConfig, info: ModelInfo, width: float | None, size: Any, spec: ModelSpec
) -> Any:
    anchors = spec.output.anchors if spec.task == "detect" else None
    model = info.build(spec.num_classes, input_size=size, width=width, anchors=anchors)
    if config.weights == "imagenet":
        from edgecnn.train.pretrained import load_imagenet_weights

        load_imagenet_weights(model, info, width or info.width)
    if config.bn_momentum is not None:
        # Keras' default 0.99 averages the statistics over ~100 steps: in runs of a few thousand
        # steps they lag the weights, and validation (inference mode) sees stale statistics.
        import keras

        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.bn_momentum
    return model


def _all_layers(model: Any) -> list[Any]:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


def _loss_fn(config: TrainConfig, spec: ModelSpec) -> Any:
    from edgecnn.train.losses import YoloLoss, classification_loss

    if spec.task == "detect":
        loss_config = config.loss
        if config.label_smoothing and not loss_config.label_smoothing:
            loss_config = loss_config.model_copy(update={"label_smoothing": config.label_smoothing})
        return YoloLoss(spec.output, spec.input.width, spec.input.height, spec.num_classes, loss_config)
    from_logits = spec.output.class_activation != "none"

    def loss(labels: Any, outputs: Any) -> Any:
        return classification_loss(labels, outputs, config.label_smoothing, from_logits)

    return loss


def _dataset(config: TrainConfig, split: Split, spec: ModelSpec) -> Any:
    import tensorflow as tf

    from edgecnn.data.pipeline import make_dataset
    from edgecnn.train.targets import YoloTargetFn

    target_fn = None
    if spec.task == "detect":
        target_fn = YoloTargetFn(
            spec.output, spec.input.width, spec.input.height, config.anchor_t, config.max_boxes
        )
    ds = make_dataset(
        split,
        spec.input,
        batch_size=config.batch,
        training=True,
        augment=_augment(config),
        seed=config.seed,
        target_fn=target_fn,
        one_hot=spec.task == "classify",
    )
    if config.workers:
        options = tf.data.Options()
        options.threading.private_threadpool_size = config.workers
        ds = ds.with_options(options)
    return ds


def _augment(config: TrainConfig) -> Any:
    from edgecnn.data.augment import AugmentConfig

    return config.augment_config if config.augment else AugmentConfig.off()


def _save_model(model: Any, run: Path) -> None:
    tmp = run / f".tmp_{MODEL_FILE}"
    model.save(tmp)
    os.replace(tmp, run / MODEL_FILE)


def train(
    config: TrainConfig, callbacks: Sequence[Callback] = (), progress: bool | None = None
) -> TrainResult:
    """Train a model as ``config`` says and fill its run directory (module docstring).

    With ``exist_ok``, a run already in the directory stays until this one has saved its
    first epoch, and comes back if this one stops before (:mod:`edgecnn.train.rundir`).

    Args:
        config: the settings; with ``resume``, only ``out`` is read and the rest comes from
            ``out/train_config.json``, except ``epochs`` when it is set explicitly: then the
            run trains on to that many epochs (more than it has done; a finished run too),
            with the learning-rate schedule of a run of that length from there on.
        callbacks: objects whose ``on_epoch_end(record)`` runs after each epoch's checkpoint.
        progress: draw a progress bar; None: only when stderr is a terminal.

    Returns:
        A :class:`TrainResult`.

    Raises:
        UserError: bad data, unknown model, model and data of different tasks, an occupied
            run directory, nothing to resume (finished or stopped early), resumed ``epochs`` not
            beyond those done, ImageNet weights unavailable.
        TrainingInterrupted: Ctrl-C (a ``KeyboardInterrupt``); its message says which epochs
            the run directory kept and the command that resumes it.
    """
    run_dir = RunDir(config.out, RUN_OUTPUTS, RUN_FILES)
    run_dir.recover()
    saved = _Saved(config.out, config.data, config.epochs)
    try:
        with progress_safe_stderr_fd(TRAINING_NOISE, ProgressBar.print_line):  # see the module docstring
            return _train(config, run_dir, callbacks, progress, saved)
    except KeyboardInterrupt as exc:
        run_dir.rollback()
        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted(saved.interrupted()) from None
    except BaseException:
        run_dir.rollback()
        raise


def _train(
    config: TrainConfig,
    run_dir: RunDir,
    callbacks: Sequence[Callback],
    progress: bool | None,
    saved: _Saved,
) -> TrainResult:
    started = time.perf_counter()
    state: dict[str, Any] = {}
    if config.resume:
        config, state = _load_resume(config)
        saved.data, saved.epochs, saved.done = config.data, config.epochs, int(state["epoch"])
        saved.best_epoch = int(state.get("best_epoch") or 0)
    run = config.out
    train_split, val_split = _load_data(config)
    info, width, size = resolve_model(config, train_split.task)
    if config.weights == "imagenet":
        from edgecnn.train.pretrained import PRETRAINED_FAMILIES

        if info.family not in PRETRAINED_FAMILIES:
            raise UserError(
                f"--weights imagenet: {info.name} has no ImageNet weights; only MobileNet backbones do"
            )
    if config.resize == "crop" and info.task != "classify":
        raise UserError(
            f"--resize crop: {info.name} is a detector, and a centre crop would cut objects off; "
            "use letterbox or stretch"
        )
    info.resolve_input_size(size)  # bad sizes fail before anything is written
    if not config.resume:
        run_dir.prepare(config.exist_ok)
        spec = _make_spec(config, info, size, train_split)
        spec.save(run / SPEC_FILE)
        (run / LABELS_FILE).write_text("".join(f"{name}\n" for name in spec.labels))
        resolved = config.model_copy(
            update={
                "model": info.name,
                "width": width,
                "imgsz": size if isinstance(size, int) else None,
                # absolute: --resume may run from another working directory
                "data": config.data.resolve() if config.data is not None else None,
            }
        )
        _write_json(run / CONFIG_FILE, resolved.model_dump(mode="json"))
    else:
        spec = ModelSpec.load(run / SPEC_FILE)

    import keras
    import tensorflow as tf

    from edgecnn.evaluation.evaluator import evaluate, evaluate_model
    from edgecnn.evaluation.keras_predictor import KerasPredictor
    from edgecnn.train.loop import Trainer
    from edgecnn.train.schedule import WarmupCosine, make_optimizer, warmup_steps_for

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    n = len(train_split)
    steps_per_epoch = n // config.batch if n > config.batch else 1
    total_steps = steps_per_epoch * config.epochs
    warmup = warmup_steps_for(steps_per_epoch, total_steps, config.warmup_epochs)
    schedule = WarmupCosine(config.peak_lr(spec.task), total_steps, warmup, config.final_lr_ratio)
    trainer = Trainer(
        _build_model(config, info, width, size, spec),
        _loss_fn(config, spec),
        make_optimizer(config.optimizer, schedule, config.weight_decay, config.momentum),
        config.ema_decay if config.ema else None,
    )
    stopper = EarlyStopping(config.patience)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if config.resume:
        trainer.load(run / CHECKPOINT_FILE)
        stopper.load_state(state)
        history = [r for r in load_history(run / HISTORY_FILE) if r["epoch"] <= state["epoch"]]
        start_epoch = int(state["epoch"])
        _record_new_length(config, state)
        logger.info("resuming %s at epoch %d of %d", run, start_epoch + 1, config.epochs)

    if not config.resume:
        logger.info(
            "training %s (%s parameters, %dx%d px) on %d train / %d val images: %d epoch%s of %d steps -> %s",
            info.name,
            f"{trainer.model.count_params():,}",
            spec.input.width,
            spec.input.height,
            n,
            len(val_split),
            config.epochs,
            "" if config.epochs == 1 else "s",
            steps_per_epoch,
            run,
        )
    predictor = KerasPredictor(trainer.ema, spec, batch_size=max(config.batch, 32))
    train_ds = _dataset(config, train_split, spec)
    if not config.resume:
        from edgecnn.train.preview import write_train_batch

        _picture(write_train_batch, train_split, spec, _augment(config), config.seed, run / TRAIN_BATCH_FILE)
    for _ in range(start_epoch):  # advance tf.data's per-pass seeds past the finished epochs
        iter(train_ds)
    stopped_early = False
    epoch = start_epoch
    try:
        with ProgressBar(config.epochs, enabled=progress) as bar:
            for epoch in range(start_epoch + 1, config.epochs + 1):
                t0 = time.perf_counter()
                bar.start_epoch(epoch, steps_per_epoch)
                losses = trainer.train_epoch(train_ds, lambda done, loss: bar.step(done, f"loss {loss:.4f}"))
                record: dict[str, Any] = {"epoch": epoch, "lr": float(schedule(trainer.steps)), **losses}
                if epoch % config.val_every == 0 or epoch == config.epochs:
                    report = evaluate_model(predictor, val_split, spec)
                    record["val"] = headline(report)
                    record["fitness"] = fitness(report)
                    if stopper.update(epoch, record["fitness"]):
                        _save_model(trainer.ema, run)
                        record["best"] = True
                record["seconds"] = time.perf_counter() - t0
                history.append(record)
                trainer.save(run / CHECKPOINT_FILE)
                run_dir.commit()  # the new run can be resumed now: the old one goes
                save_history(history, run / HISTORY_FILE)
                stopped_early = stopper.should_stop(epoch) and epoch < config.epochs
                finished = stopped_early or epoch == config.epochs
                _write_json(run / STATE_FILE, {**stopper.state(), "epoch": epoch, "finished": finished})
                saved.done, saved.best_epoch, saved.finished = epoch, stopper.best_epoch, finished
                summary = _summary(record)
                bar.end_epoch(summary)
                logger.info("epoch %d/%d: %s (%.1fs)", epoch, config.epochs, summary, record["seconds"])
                for callback in callbacks:
                    callback.on_epoch_end(record)
                if stopped_early:
                    logger.info("no improvement for %d epochs: stopping early", config.patience)
                    break
    finally:
        if history:  # also when interrupted: the curves so far
            _plot(history, run / CURVES_FILE)

    from edgecnn.evaluation.predictor import load_predictor

    best = load_predictor(run / MODEL_FILE, batch_size=max(config.batch, 32))
    final = evaluate(best, val_split, spec)
    metrics = final.report
    _write_json(run / METRICS_FILE, metrics)
    from edgecnn.evaluation.plots import write_plots
    from edgecnn.train.preview import write_val_predictions

    _picture(write_val_predictions, best, val_split, spec, run / VAL_PRED_FILE)
    _picture(write_plots, final.metrics, run)  # pr_curve.png, confusion_matrix.png, as eval --plots
    return TrainResult(
        run_dir=run,
        model_path=run / MODEL_FILE,
        spec=spec,
        metrics=metrics,
        history=history,
        best_epoch=stopper.best_epoch,
        epochs_run=epoch,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
    )


def _picture(draw: Any, *args: Any) -> None:
    """Run a drawing function (:mod:`edgecnn.train.preview`, the evaluation plots); a failure is
    logged, not raised."""
    try:
        draw(*args)
    except Exception as exc:  # a picture must not cost the run
        logger.warning("could not draw %s: %s", args[-1], exc)


def _plot(history: list[dict[str, Any]], path: Path) -> None:
    """Draw the curves; a drawing failure must not cost the run (its numbers are in history.json)."""
    try:
        plot_history(history, path)
    except Exception as exc:  # matplotlib missing or broken
        logger.warning("could not draw %s: %s", path, exc)


def _summary(record: dict[str, Any]) -> str:
    text = f"loss {record['loss']:.4f}"
    for key, label in (("map50", "mAP50"), ("map50_95", "mAP50-95"), ("accuracy", "acc")):
        value = (record.get("val") or {}).get(key)
        if value is not None:
            text += f"  {label} {value:.3f}"
    return text
