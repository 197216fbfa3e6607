"""Learning-rate schedule and optimiser settings."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from edgecnn.train.schedule import warmup_cosine, warmup_steps_for


def test_warmup_then_cosine_to_the_final_ratio() -> None:
    lrs = [warmup_cosine(s, 0.01, 1000, 100, final_ratio=0.05) for s in range(1001)]
    assert lrs[0] == 0.0
    assert lrs[50] == pytest.approx(0.005)
    assert lrs[100] == pytest.approx(0.01)
    assert max(lrs) == pytest.approx(0.01)
    assert lrs[550] == pytest.approx((0.01 + 0.0005) / 2)  # half-way through the cosine
    assert lrs[1000] == pytest.approx(0.0005)
    assert all(a >= b for a, b in pairwise(lrs[100:]))  # decays monotonically
    assert all(a <= b for a, b in pairwise(lrs[:101]))  # warms up monotonically


def test_warmup_length() -> None:
    assert warmup_steps_for(50, 5000, 3.0) == 150  # 3 epochs
    assert warmup_steps_for(10, 5000, 3.0) == 100  # at least 100 steps
    assert warmup_steps_for(10, 120, 3.0) == 40  # at most a third of a short run
    assert warmup_steps_for(10, 5000, 0.0) == 0


@pytest.mark.tf
def test_keras_schedule_matches_the_reference_and_decay_skips_biases_and_norms() -> None:
    pytest.importorskip("tensorflow")
    import keras

    from edgecnn.train.schedule import WarmupCosine, make_optimizer

    schedule = WarmupCosine(0.01, 1000, 100, 0.05)
    for step in (0, 1, 50, 99, 100, 101, 500, 999, 1000, 1500):
        assert float(schedule(step)) == pytest.approx(warmup_cosine(step, 0.01, 1000, 100, 0.05), rel=1e-5)
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()

    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, x)
    opt = make_optimizer("adamw", 0.1, weight_decay=0.5, clipnorm=None)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    zeros = [np.zeros(v.shape, "float32") for v in model.trainable_variables]
    opt.apply_gradients(zip(zeros, model.trainable_variables, strict=True))
    for v in model.trainable_variables:
        changed = not np.allclose(v.numpy(), before[v.path])
        # With zero gradients only weight decay moves a variable: kernels decay, the rest does not.
        assert changed == v.path.endswith("kernel"), v.path
