"""Host latency of an LCE TFLite model, with the fastest kernel configuration.

```python
result = benchmark_tflite("model.tflite", threads=1)
result.kernel, result.median_ms
```

On x86 and macOS hosts LCE runs through its Python `Interpreter`, whose
default binary-convolution path is a portable one; `use_indirect_bgemm=True`
ran QuickNetSmall (224x224) several times faster here. Which configuration
wins depends on the model and the host, so `benchmark_tflite` measures every
candidate briefly, picks the fastest by median, and then measures it properly.
Host figures rank models on the host; they are not ARM predictions (use
`lce_benchmark_model` on the device for those).
"""

import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af._quiet import native_output_captured
from keras_bnn_af.benchmarks.compare import Spread, spread
from keras_bnn_af.progress import track

#: name -> LCE Interpreter options. "lce_default" is what LCE does unasked.
KERNELS: dict[str, dict[str, bool]] = {
    "lce_default": {},
    "indirect_bgemm": {"use_indirect_bgemm": True},
    "xnnpack": {"use_xnnpack": True},
    "indirect_bgemm+xnnpack": {"use_indirect_bgemm": True, "use_xnnpack": True},
}
TFLITE_IDENTIFIER = b"TFL3"


@dataclass
class HostBenchmark:
    """Latency of one model on this host, in milliseconds per inference."""

    model: str
    kernel: str
    threads: int
    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    candidates_median_ms: dict[str, float] = field(default_factory=dict)
    round_medians_ms: tuple[float, ...] = ()

    def to_json(self) -> dict:
        data = asdict(self)
        data["round_medians_ms"] = list(self.round_medians_ms)
        return data


def read_tflite(model: str | Path | bytes) -> tuple[bytes, str]:
    """The flatbuffer bytes and a display name; rejects files that are not TFLite."""
    if isinstance(model, bytes | bytearray):
        flatbuffer, name = bytes(model), "<bytes>"
    else:
        path = Path(model)
        if not path.is_file():
            raise ValueError(
                f"TFLite model {str(path)!r} does not exist or is not a file. "
                "Pass the path of a .tflite file, e.g. one written by "
                "`keras-bnn-af export`."
            )
        flatbuffer, name = path.read_bytes(), str(path)
    if flatbuffer[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(
            f"{name!r} is not a TFLite flatbuffer (expected the identifier "
            f"{TFLITE_IDENTIFIER.decode()!r} at bytes 4-8, found "
            f"{flatbuffer[4:8]!r}). Pass a .tflite file written by LCE's converter."
        )
    return flatbuffer, name


def benchmark_tflite(
    model: str | Path | bytes,
    *,
    threads: int = 1,
    runs: int = 30,
    warmup: int = 3,
    kernel: str = "auto",
    trial_runs: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> HostBenchmark:
    """Median and 90th-percentile latency of single-sample inference.

    # Arguments
        model: a `.tflite` path or its bytes.
        threads: interpreter threads.
        runs: timed inferences of the chosen configuration.
        warmup: untimed inferences before any timing.
        kernel: a name from `KERNELS`, or `"auto"` to time each briefly
            (`trial_runs` inferences) and keep the fastest.
        seed: seed of the random input.
        progress: report the kernel trials (`keras_bnn_af.progress.track`).
    """
    flatbuffer, name = read_tflite(model)
    _check_positive(threads=threads, runs=runs, trial_runs=trial_runs)
    if kernel != "auto" and kernel not in KERNELS:
        hint = did_you_mean(kernel, ["auto", *KERNELS])
        raise ValueError(
            f"Unknown kernel configuration {kernel!r}. Expected 'auto' (time each "
            f"configuration, keep the fastest) or one of "
            f"{', '.join(map(repr, KERNELS))}.{hint} Pass one of them, e.g. "
            "kernel='auto' (--kernel auto)."
        )
    candidates = {}
    if kernel == "auto":
        for candidate in track(KERNELS, "choosing LCE kernels", enabled=progress):
            times = _time(flatbuffer, candidate, threads, trial_runs, warmup, seed)
            candidates[candidate] = round(statistics.median(times), 3)
        kernel = min(candidates, key=candidates.get)
    times = np.array(_time(flatbuffer, kernel, threads, runs, warmup, seed))
    return HostBenchmark(
        model=name,
        kernel=kernel,
        threads=threads,
        runs=runs,
        median_ms=round(float(np.median(times)), 3),
        p90_ms=round(float(np.percentile(times, 90)), 3),
        min_ms=round(float(times.min()), 3),
        candidates_median_ms=candidates,
    )


def compare_latency(
    models: Mapping[str, str | Path | bytes],
    *,
    threads: int = 1,
    rounds: int = 7,
    runs: int = 20,
    warmup: int = 3,
    seed: int = 0,
    kernel: str = "auto",
    control: bool = False,
    progress: bool = False,
) -> dict[str, HostBenchmark]:
    """Latencies of several models measured side by side, for ratios.

    All models run with **one** kernel configuration: the fastest for the
    first model (`kernel="auto"` on it), so that a ratio compares the models
    and not the kernels each would pick (measured here: files with identical
    operators came out 0.90-1.22x apart when each chose its own). Then
    `rounds` rounds time every model in turn for `runs` inferences, so load on
    a shared host hits all of them alike; with `control`, each round ends
    with the first model again, reported as `"<first> (control)"`: its ratio
    to the first model is the noise floor of these ratios. `median_ms` and
    `p90_ms` are over all `rounds * runs` timings of a model;
    `round_medians_ms` has its median per round, for per-round ratios
    (`latency_ratios`).

    # Arguments
        models: name -> `.tflite` path or bytes; the first is the reference.
        kernel: the configuration for all models: `"auto"` (the first model's
            fastest) or a name from `KERNELS`.
        progress: report the kernel trials and the rounds.

    # Returns
        name -> `HostBenchmark` (its `runs` is `rounds * runs`), plus the
        control entry with `control`.
    """
    _check_positive(threads=threads, rounds=rounds, runs=runs)
    flatbuffers = {name: read_tflite(model)[0] for name, model in models.items()}
    first = next(iter(flatbuffers))
    chosen = benchmark_tflite(
        flatbuffers[first],
        threads=threads,
        runs=runs,
        seed=seed,
        kernel=kernel,
        progress=progress,
    )
    order = list(flatbuffers.items())
    if control:
        order.append((f"{first} (control)", flatbuffers[first]))
    times = {name: [] for name, _ in order}
    medians = {name: [] for name, _ in order}
    for _ in track(range(rounds), "timing side by side", enabled=progress):
        for name, flatbuffer in order:
            timed = _time(flatbuffer, chosen.kernel, threads, runs, warmup, seed)
            times[name] += timed
            medians[name].append(round(statistics.median(timed), 4))
    return {
        name: HostBenchmark(
            model=name,
            kernel=chosen.kernel,
            threads=threads,
            runs=len(values),
            median_ms=round(float(np.median(values)), 4),
            p90_ms=round(float(np.percentile(values, 90)), 4),
            min_ms=round(float(np.min(values)), 4),
            candidates_median_ms=chosen.candidates_median_ms,
            round_medians_ms=tuple(medians[name]),
        )
        for name, values in times.items()
    }


def latency_ratios(
    timed: Mapping[str, HostBenchmark], reference: str | None = None
) -> dict[str, Spread]:
    """Per-round latency ratios to `reference` (the first model by default).

    For `compare_latency`'s results: round r's ratio of model m is
    `round_medians_ms[r] of m / round_medians_ms[r] of reference`; the `Spread`
    is their median and min-max. With `control=True` the control's ratio is the
    noise floor: ratios whose range overlaps it are not told apart.
    """
    reference = reference or next(iter(timed))
    base = timed[reference].round_medians_ms
    if not base:
        raise ValueError(
            f"{reference!r} has no per-round medians; expected results of "
            "compare_latency. Time the models with compare_latency first."
        )
    return {
        name: spread(
            [m / b for m, b in zip(result.round_medians_ms, base, strict=True)]
        )
        for name, result in timed.items()
    }


def median_latencies(
    models: Mapping[str, str | Path | bytes], **options
) -> dict[str, float]:
    """Median milliseconds per model, timed side by side (`compare_latency`).

    The `latency` callable of `keras_bnn_af.converters.export_lce`:

    ```python
    export_lce(model, "m.tflite", latency=median_latencies)
    ```

    # Arguments
        models: name -> `.tflite` path or bytes.
        **options: `compare_latency`'s `threads`, `rounds`, `runs`, `warmup`,
            `seed`.
    """
    timed = compare_latency(models, **options)
    return {name: result.median_ms for name, result in timed.items()}


def _time(flatbuffer, kernel, threads, runs, warmup, seed) -> list[float]:
    import larq_compute_engine as lce

    with native_output_captured():  # TFLite announces XNNPACK at any log level
        interpreter = lce.testing.Interpreter(
            flatbuffer, num_threads=threads, **KERNELS[kernel]
        )
    sample = _sample(interpreter, seed)
    for _ in range(warmup):
        interpreter.predict(sample)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.predict(sample)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _sample(interpreter, seed):
    rng = np.random.default_rng(seed)
    samples = []
    for shape, dtype in zip(
        interpreter.input_shapes, interpreter.input_types, strict=True
    ):
        shape = (1, *shape[1:])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            samples.append(rng.integers(info.min, info.max, shape, dtype=dtype))
        else:
            samples.append(rng.normal(size=shape).astype(dtype))
    return samples[0] if len(samples) == 1 else samples


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {value!r}; pass e.g. {name}=1."
            )
