"""A trial's latency as a metric keras-tuner sees: `latency_ms` in every epoch's logs.

```python
latency = TrialLatency("rpi4b", threads=4)       # predicted by a LatencyModel
latency = TrialLatency(measure="host")           # measured here, fastest kernels
latency = TrialLatency(measure="ssh://pi@raspberrypi.local",
                       binary="lce_benchmark_model_aarch64")  # on the device
hypermodel = GAAFHyperModel(..., latency=latency)
# every epoch's logs then carry latency_ms, so keras-tuner records it with the
# accuracy and a ParetoGeneticOracle can minimize it.
```

Latency depends on the architecture and the binarizers, not on the trained
weights (threshold folding depends only on the binarizer's form), so it is
computed once per trial from the built model, before training: the model is
converted as `export_lce` would (`latency.corpus.convert`: thresholds folded)
and predicted by a `LatencyModel` profile, or timed on this host with
`benchmark_tflite`. Host figures rank models on this host only.
"""

from collections.abc import Callable

from keras_bnn_af._keras import keras

__all__ = ["LATENCY_METRIC", "ReportLatency", "TrialLatency", "latency_callbacks"]

LATENCY_METRIC = "latency_ms"


class TrialLatency:
    """Milliseconds per inference of a Keras model: predicted or measured.

    # Arguments
        device_model: a profile name (`keras_bnn_af.latency.profile_names()`),
            a JSON file written by `LatencyModel.save`, or a `LatencyModel`.
            Ignored with `measure`.
        threads: threads of the predicted or measured inference.
        measure: None to predict; `"host"` to time the converted model on this
            host with LCE's interpreter (its fastest kernel configuration);
            `local`, `ssh://user@host[:port]` or `adb[:SERIAL]` to run LCE's
            benchmark binary there (`device_latency.DeviceLatency`).
        binary, identity: the device's benchmark binary and ssh key.
        known_hosts: ssh only: the known_hosts file holding the device's host
            key; None for the user's (`DeviceLatency`). Checked strictly.
    """

    def __init__(
        self,
        device_model="host",
        *,
        threads: int = 1,
        measure: str | None = None,
        binary=None,
        identity=None,
        known_hosts=None,
    ):
        from keras_bnn_af.latency import LatencyModel
        from keras_bnn_af.searchers.device_latency import DeviceLatency

        self.measure = measure
        self.threads = threads
        self.model = self.device = None
        if measure is not None and measure != "host":
            self.device = DeviceLatency(
                measure,
                binary=binary,
                identity=identity,
                known_hosts=known_hosts,
                threads=threads,
            )
        if measure is None:
            is_model = isinstance(device_model, LatencyModel)
            self.model = device_model if is_model else LatencyModel.load(device_model)
            self.model._coefficients(threads)  # fails now, not in the first trial

    @property
    def name(self) -> str:
        return f"measured on {self.measure}" if self.measure else self.model.name

    def __call__(self, model: keras.Model) -> float:
        from keras_bnn_af.latency.corpus import convert

        flatbuffer = convert(model)
        if self.measure == "host":
            from keras_bnn_af.benchmarks import benchmark_tflite

            return benchmark_tflite(flatbuffer, threads=self.threads).median_ms
        if self.device is not None:
            return self.device(flatbuffer)
        return self.model.predict(flatbuffer, threads=self.threads)


class ReportLatency(keras.callbacks.Callback):
    """Adds `latency_ms` (one value for the whole training) to every epoch's logs."""

    def __init__(self, latency_ms: float):
        super().__init__()
        self.latency_ms = float(latency_ms)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[LATENCY_METRIC] = self.latency_ms


def latency_callbacks(
    latency: Callable[[keras.Model], float] | None, model: keras.Model
) -> list[keras.callbacks.Callback]:
    """`[ReportLatency(latency(model))]`, or `[]` without `latency`."""
    if latency is None:
        return []
    return [ReportLatency(latency(model))]
