"""Learning-rate schedule (linear warm-up, then cosine decay) and the optimiser.

**Why AdamW by default.** These are small networks trained from scratch for a few thousand
steps on small data sets. Adaptive per-weight steps converge in far fewer steps than
SGD-momentum there, and need no tuning of the rate against the loss scale; Ultralytics'
``optimizer=auto`` makes the same choice (AdamW below 10 000 iterations, SGD above, where
SGD generalises slightly better on long schedules). ``sgd`` (momentum 0.937, Nesterov) is
available for long runs. Biases and batch-norm scales and offsets get no weight decay.

**Schedule.** ``lr`` rises linearly from 0 over ``warmup_steps`` (a freshly initialised
network's first, large gradients would otherwise knock batch-norm statistics and the
objectness prior off), then follows half a cosine down to ``lr * final_ratio`` at the last
step. Gradients are clipped to a global norm of 10 (Ultralytics) as a safety net.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import keras

from edgecnn.train.config import DEFAULT_LR  # noqa: F401  (re-exported)

Optimizer = Literal["adamw", "sgd"]

#: Variables whose name contains one of these get no weight decay.
NO_DECAY = ["bias", "gamma", "beta"]


def warmup_cosine(
    step: float, base_lr: float, total_steps: int, warmup_steps: int, final_ratio: float = 0.01
) -> float:
    """The learning rate at ``step`` (0-based), in plain Python (the reference for the Keras schedule).

    Args:
        step: optimiser step.
        base_lr: peak learning rate, reached at the end of the warm-up.
        total_steps: steps of the whole run; the rate reaches ``base_lr * final_ratio`` there.
        warmup_steps: steps of the linear warm-up from 0.
        final_ratio: final rate as a fraction of ``base_lr``.

    >>> warmup_cosine(0, 1.0, 100, 10), warmup_cosine(10, 1.0, 100, 10), warmup_cosine(100, 1.0, 100, 10)
    (0.0, 1.0, 0.01)
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max((step - warmup_steps) / span, 0.0), 1.0)
    final = base_lr * final_ratio
    return final + (base_lr - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


@keras.saving.register_keras_serializable(package="edgecnn")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """:func:`warmup_cosine` as a Keras schedule (evaluated on the optimiser's step counter).

    Args:
        base_lr: peak learning rate.
        total_steps: steps of the whole run.
        warmup_steps: steps of the linear warm-up.
        final_ratio: final rate as a fraction of ``base_lr``.
    """

    def __init__(
        self, base_lr: float, total_steps: int, warmup_steps: int, final_ratio: float = 0.01
    ) -> None:
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_ratio = float(final_ratio)

    def __call__(self, step: Any) -> Any:
        """The learning rate at optimiser step ``step`` (a tensor)."""
        from keras import ops

        step = ops.cast(step, "float32")
        warm = self.base_lr * step / max(self.warmup_steps, 1)
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        final = self.base_lr * self.final_ratio
        cosine = final + (self.base_lr - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, for saving the schedule with the model."""
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_ratio": self.final_ratio,
        }


def warmup_steps_for(
    steps_per_epoch: int, total_steps: int, warmup_epochs: float, min_steps: int = 100
) -> int:
    """Warm-up length: ``warmup_epochs`` epochs but at least ``min_steps`` (Ultralytics), at most
    a third of the run; 0 when ``warmup_epochs`` is 0."""
    if warmup_epochs <= 0:
        return 0
    return int(min(max(round(warmup_epochs * steps_per_epoch), min_steps), total_steps // 3))


def make_optimizer(
    name: Optimizer,
    schedule: keras.optimizers.schedules.LearningRateSchedule | float,
    weight_decay: float = 5e-4,
    momentum: float = 0.937,
    clipnorm: float | None = 10.0,
) -> keras.optimizers.Optimizer:
    """The optimiser (module docstring): AdamW (``beta_1 = momentum``) or SGD with Nesterov momentum.

    Args:
        name: ``adamw`` or ``sgd``.
        schedule: the learning rate or schedule.
        weight_decay: decoupled weight decay (not applied to biases and batch-norm parameters).
        momentum: SGD momentum, AdamW ``beta_1`` (Ultralytics 0.937 for both).
        clipnorm: global gradient-norm clip; None for none.
    """
    if name == "adamw":
        opt = keras.optimizers.AdamW(
            learning_rate=schedule,
            weight_decay=weight_decay,
            beta_1=momentum,
            beta_2=0.999,
            global_clipnorm=clipnorm,
        )
    elif name == "sgd":
        opt = keras.optimizers.SGD(
            learning_rate=schedule,
            momentum=momentum,
            nesterov=True,
            weight_decay=weight_decay,
            global_clipnorm=clipnorm,
        )
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt
