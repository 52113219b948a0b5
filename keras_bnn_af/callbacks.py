r"""Keras callbacks for training binary networks.

```python
from keras_bnn_af.callbacks import SharpeningSchedule

model.fit(x, y, epochs=30, callbacks=[
    SharpeningSchedule("exponential", start=1.0, end=1000.0, duration=29),
])
```
"""

import copy
import math
from collections.abc import Callable
from numbers import Integral, Real

from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers.self_binarizing import SelfBinarizing

__all__ = ["SharpeningSchedule"]

_SCHEDULES = ("linear", "exponential")
_FREQUENCIES = ("epoch", "step")


class SharpeningSchedule(keras.callbacks.Callback):
    r"""Raises the sharpness \\(v\\) of every `SelfBinarizing` quantizer in a model.

    At the start of every epoch (`update_freq="epoch"`, \\(t\\) = the epoch
    index) or every training step (`update_freq="step"`, \\(t\\) =
    `model.optimizer.iterations`, the steps done so far), all `SelfBinarizing`
    input and kernel quantizers of the model, nested models included, get
    \\(v = f(t)\\), with \\(s\\) = `start`, \\(e\\) = `end`, \\(d\\) = `duration`
    and \\(\bar t = \min(t, d)\\):

    \\[
    f_\text{linear}(t) = s + (e - s)\,\frac{\bar t}{d}, \qquad
    f_\text{exponential}(t) = s \left(\frac{e}{s}\right)^{\bar t / d},
    \\]

    so the first epoch (or step) trains at \\(v = s\\), epoch (or step) \\(d\\)
    and all later ones at \\(v = e\\). To reach `end` in the last of \\(E\\)
    epochs, use `duration=E - 1`. A callable `schedule(t) -> v` replaces the
    formulas. After `fit`, the quantizers keep the value of the last epoch (or
    step) that ran; the value is written into the epoch logs as
    `logs[log_name]`.

    Because Keras counts epochs and `optimizer.iterations` across calls of
    `fit` (with `initial_epoch`), a resumed run continues the schedule. With
    `steps_per_execution > 1` the step schedule is applied once per execution.

    The callback holds no model until Keras calls `set_model`, and a deep copy
    (keras-tuner copies callbacks for every trial) is a fresh callback with the
    same settings.

    # Arguments
        schedule: `"linear"`, `"exponential"`, or a callable `schedule(t) -> v`
            with integer `t >= 0` and finite `v > 0`.
        start: \\(v\\) at \\(t = 0\\) (default 1.0); not with a callable.
        end: \\(v\\) from \\(t = d\\) on; required unless `schedule` is callable.
        duration: \\(d\\), a positive number of epochs or steps; required
            unless `schedule` is callable.
        update_freq: `"epoch"` or `"step"`.
        log_name: key of the epoch logs under which \\(v\\) is reported.

    # Raises
        ValueError: for invalid arguments, when `fit` starts on a model with no
            `SelfBinarizing` quantizer, or when a callable returns an invalid
            \\(v\\).

    # References
        - [Self-Binarizing Networks](https://arxiv.org/abs/1902.00730)
    """

    def __init__(
        self,
        schedule: str | Callable[[int], float] = "linear",
        *,
        start: float | None = None,
        end: float | None = None,
        duration: int | None = None,
        update_freq: str = "epoch",
        log_name: str = "sharpness",
    ):
        super().__init__()
        _validate(schedule, start, end, duration, update_freq)
        self.schedule = schedule
        self.start = 1.0 if start is None and isinstance(schedule, str) else start
        self.end = end
        self.duration = None if duration is None else int(duration)
        self.update_freq = update_freq
        self.log_name = log_name
        self._quantizers: list[SelfBinarizing] = []

    def sharpness_at(self, t: int) -> float:
        """The sharpness \\(v\\) of epoch or step `t` (0-based)."""
        if callable(self.schedule):
            value = self.schedule(t)
            if not _is_sharpness(value):
                raise ValueError(
                    f"Sharpness schedule {self.schedule!r} returned {value!r} for "
                    f"t={t}; expected a finite number v > 0. Fix the schedule."
                )
            return float(value)
        if t >= self.duration:
            return float(self.end)
        fraction = t / self.duration
        if self.schedule == "linear":
            return self.start + (self.end - self.start) * fraction
        return self.start * (self.end / self.start) ** fraction

    def on_train_begin(self, logs=None):
        self._quantizers = self_binarizing_quantizers(self.model)
        if not self._quantizers:
            raise ValueError(
                f"SharpeningSchedule found no SelfBinarizing quantizer in model "
                f"{self.model.name!r}. Expected at least one input or kernel "
                "quantizer 'self_binarizing'. Use it in the model, or drop the "
                "callback."
            )

    def on_epoch_begin(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self._set(self.sharpness_at(epoch))

    def on_train_batch_begin(self, batch, logs=None):
        if self.update_freq == "step":
            step = int(keras.backend.get_value(self.model.optimizer.iterations))
            self._set(self.sharpness_at(step))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._quantizers:
            logs[self.log_name] = float(self._quantizers[0].sharpness.numpy())

    def on_train_end(self, logs=None):
        self._quantizers = []

    def _set(self, value: float) -> None:
        for quantizer in self._quantizers:
            quantizer.sharpness.assign(value)

    def __deepcopy__(self, memo):
        fresh = type(self)(
            copy.deepcopy(self.schedule, memo),
            start=self.start,
            end=self.end,
            duration=self.duration,
            update_freq=self.update_freq,
            log_name=self.log_name,
        )
        memo[id(self)] = fresh
        return fresh


def self_binarizing_quantizers(model: keras.Model) -> list[SelfBinarizing]:
    """Every `SelfBinarizing` quantizer of `model` (input and kernel), once each."""
    found = {}
    for module in model.submodules:
        if isinstance(module, SelfBinarizing):
            found.setdefault(id(module), module)
    return list(found.values())


def _is_sharpness(value) -> bool:
    return (
        isinstance(value, Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _validate(schedule, start, end, duration, update_freq) -> None:
    if callable(schedule):
        given = [
            name
            for name, value in (("start", start), ("end", end), ("duration", duration))
            if value is not None
        ]
        if given:
            raise ValueError(
                f"Received a callable schedule {schedule!r} together with "
                f"{', '.join(given)}; a callable sets v by itself. Drop "
                f"{', '.join(given)}, or use schedule='linear' or 'exponential'."
            )
    elif schedule not in _SCHEDULES:
        raise ValueError(
            f"Received schedule={schedule!r}; expected 'linear', 'exponential' or "
            "a callable schedule(t) -> v. Pass one of those."
        )
    else:
        for name, value in (("start", 1.0 if start is None else start), ("end", end)):
            if not _is_sharpness(value):
                raise ValueError(
                    f"Received {name}={value!r}; expected a finite sharpness v > 0. "
                    f"Pass e.g. start=1.0, end=100.0."
                )
        if (
            isinstance(duration, bool)
            or not isinstance(duration, Integral)
            or duration < 1
        ):
            raise ValueError(
                f"Received duration={duration!r}; expected a positive integer number "
                "of epochs or steps over which v goes from start to end. Pass e.g. "
                "duration=10."
            )
    if update_freq not in _FREQUENCIES:
        raise ValueError(
            f"Received update_freq={update_freq!r}; expected 'epoch' or 'step'. "
            "Pass one of those."
        )
