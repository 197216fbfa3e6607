"""The compiled training step, the EMA copy of the weights, and checkpoints of both with the optimiser.

:class:`Trainer` owns the model being trained, an exponential moving average (EMA) copy of
all its weights (batch-norm statistics included, as Ultralytics' ``ModelEMA``), the optimiser
and one ``tf.function`` train step: forward, loss, gradients, optimiser update, EMA update.
The EMA decay ramps up as ``decay * (1 - exp(-step / ramp))`` so the copy follows the fast
early changes and averages once training settles; validation and the saved model use it.

A checkpoint (:meth:`Trainer.save`) is one ``.npz`` file with every weight of the model, of
the EMA copy and every optimiser variable (step counter, moments), written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from edgecnn.errors import UserError

#: Steps over which the EMA decay ramps up (Ultralytics: 2000; these runs are much shorter).
EMA_RAMP_STEPS = 100

LossFn = Callable[[Any, Any], tuple[Any, dict[str, Any]]]


class Trainer:
    """Model, EMA copy, optimiser and the compiled train step.

    Args:
        model: the model to train.
        loss_fn: ``loss_fn(y_true, outputs) -> (loss, {part: value})``, TensorFlow.
        optimizer: a built or unbuilt Keras optimiser.
        ema_decay: EMA decay once ramped up; None keeps the EMA copy equal to the weights.
    """

    def __init__(
        self,
        model: keras.Model,
        loss_fn: LossFn,
        optimizer: keras.optimizers.Optimizer,
        ema_decay: float | None,
    ) -> None:
        self.model = model
        self.ema = keras.models.clone_model(model)
        self.ema.set_weights(model.get_weights())
        self.optimizer = optimizer
        optimizer.build(model.trainable_variables)
        self.ema_decay = ema_decay
        train_vars = model.trainable_variables
        pairs = list(zip(self.ema.weights, model.weights, strict=True))

        @tf.function(reduce_retracing=True, autograph=False)  # plain Python loops only
        def step(images: Any, targets: Any, decay: Any) -> Any:
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss, parts = loss_fn(targets, outputs)
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, train_vars)
            optimizer.apply_gradients(zip(grads, train_vars, strict=True))
            for e, w in pairs:
                e.assign(decay * e + (1.0 - decay) * w)
            return loss, parts

        self._step = step

    @property
    def steps(self) -> int:
        """Optimiser steps taken so far."""
        return int(self.optimizer.iterations.numpy())

    def decay(self, step: int) -> float:
        """EMA decay at optimiser step ``step`` (1-based); 0 without EMA."""
        if self.ema_decay is None:
            return 0.0
        return self.ema_decay * (1 - math.exp(-step / EMA_RAMP_STEPS))

    def train_epoch(
        self, batches: Iterable[tuple[Any, Any]], on_step: Callable[[int, float], None] | None = None
    ) -> dict[str, float]:
        """One pass over ``batches``; returns the mean ``loss`` and loss parts, and the step count.

        ``on_step(steps_done, running_mean_loss)`` is called after each step.
        """
        sums: dict[str, float] = {}
        count = 0
        for images, targets in batches:
            decay = tf.constant(self.decay(self.steps + 1), tf.float32)
            loss, parts = self._step(images, targets, decay)
            count += 1
            sums["loss"] = sums.get("loss", 0.0) + float(loss)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            if on_step is not None:
                on_step(count, sums["loss"] / count)
        if not count:
            raise UserError("the training split gave no batches")
        return {key: value / count for key, value in sums.items()}

    def _groups(self) -> list[tuple[str, list[Any]]]:
        return [("model", self.model.weights), ("ema", self.ema.weights), ("opt", self.optimizer.variables)]

    def save(self, path: Path) -> None:
        """Write weights, EMA weights and optimiser state to ``path`` (``.npz``), atomically."""
        arrays = {
            f"{prefix}_{i:05d}": np.asarray(v.numpy())
            for prefix, variables in self._groups()
            for i, v in enumerate(variables)
        }
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        """Restore :meth:`save`'s file into this trainer (same architecture and optimiser).

        Raises:
            UserError: the checkpoint was written for another model.
        """
        with np.load(path) as data:
            for prefix, variables in self._groups():
                keys = sorted(k for k in data.files if k.startswith(f"{prefix}_"))
                if len(keys) != len(variables):
                    raise UserError(f"--resume: {path} does not fit the model ({prefix} variables)")
                for key, var in zip(keys, variables, strict=True):
                    value = data[key]
                    if tuple(value.shape) != tuple(var.shape):
                        raise UserError(f"--resume: {path} does not fit the model ({var.path})")
                    var.assign(value)
