r"""`LatencyModel`: per-op latency of LCE binary networks on one device.

```python
model = LatencyModel.load("rpi4b")
model.predict("binarynet.tflite", threads=1)   # ms
model.explain(keras_model)                     # [OpCost(index, op, ms, features)]
host = LatencyModel.fit(samples, name="my-host")
pi = host.calibrate(pi_samples, name="my-pi")  # a few runs on the device
```

A model's latency is a non-negative sum over its ops' work features
\(x_f\) (`keras_bnn_af.latency.features`):

\[ \hat t(\text{model}, n) = \sum_f c_{f,n}\, x_f(\text{model}) \]

with one coefficient set per thread count \(n\). `fit` finds the \(c_{f,n}
\ge 0\) by non-negative least squares on *relative* errors, minimizing
\(\sum_i ((\hat t_i - t_i) / t_i)^2\), so small and large nets weigh alike.
`calibrate` keeps the fitted shape and refits only device-level scales, one per
group of features (`GROUPS`: binary work, float work, per-op overhead), from a
few runs on another device: \(c'_{f} = s_{g(f)}\, c_f\). `groups=3` scales
binary work (binary conv MACs and outputs, binary pooling, (de)quantization),
float work and per-op overhead (the `_count` features) separately, `groups=2`
binary work and the rest, `groups=1` everything by one factor.

A feature the fit never saw non-zero (an op kind absent from its nets) has no
coefficient: an elementwise kind borrows the mean of the fitted elementwise
kinds, anything else costs 0, and `predict` warns naming the op. An op outside
`features.KNOWN_OPS` is priced as data movement of its tensors, with a warning.
"""

import json
import math
import os
import statistics
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_bnn_af._files import write_atomic
from keras_bnn_af.latency.features import (
    FEATURES,
    KNOWN_OPS,
    graph_features,
    op_features,
)
from keras_bnn_af.latency.graph import Graph, Op, read_graph

__all__ = [
    "GROUPS",
    "LatencyModel",
    "LatencySample",
    "LatencyWarning",
    "OpCost",
    "profile_names",
    "samples_from_records",
]

PROFILES_DIR = Path(__file__).with_name("profiles")
SCHEMA = 1
#: `calibrate`'s device-level parameters: groups of features that share a scale.
GROUPS: dict[int, tuple[str, ...]] = {
    1: ("all",),
    2: ("binary", "other"),
    3: ("binary", "float", "overhead"),
}
_BINARY = ("bconv_macs", "bconv_out", "bmaxpool", "quantize_kelems", "dequantize_k")


class LatencyWarning(UserWarning):
    """A prediction that rests on a guess (an op or feature the fit never saw)."""


@dataclass(frozen=True)
class LatencySample:
    """One measured model: its features, threads and latency in ms."""

    name: str
    features: dict[str, float]
    threads: int
    latency_ms: float


@dataclass(frozen=True)
class OpCost:
    """One op's share of a prediction (`LatencyModel.explain`)."""

    index: int
    op: str
    ms: float
    features: dict[str, float]
    note: str = ""


@dataclass
class LatencyModel:
    """Coefficients (ms per feature unit) per thread count, and what they rest on.

    # Attributes
        name: the profile's name (`host`, `rpi4b`, ...).
        coefficients: threads -> feature -> ms per unit; only fitted features.
        device: the device's facts (`DeviceFacts.to_json()` or a description).
        fit_error: threads -> how well the fit matches its own samples
            (`median_abs_error`, `within_10pct`, `samples`), plus anything the
            fitter adds (e.g. leave-one-out errors).
        rests_on: one paragraph: which measurements, which kernels, caveats.
    """

    name: str
    coefficients: dict[int, dict[str, float]]
    device: dict = field(default_factory=dict)
    fit_error: dict[int, dict] = field(default_factory=dict)
    rests_on: str = ""

    # --- prediction -----------------------------------------------------------------

    def predict(self, model, threads: int = 1) -> float:
        """Predicted milliseconds of one inference of `model` (a `.tflite`
        path or bytes, a `Graph`, or a Keras model, converted as `export_lce`
        would)."""
        return sum(cost.ms for cost in self.explain(model, threads))

    def predict_features(self, features: Mapping[str, float], threads: int = 1):
        """Predicted milliseconds of a model given as its `graph_features`."""
        return _cost(features, self._coefficients(threads))[0]

    def explain(self, model, threads: int = 1) -> list[OpCost]:
        """The prediction op by op, in execution order (plus the graph's
        fixed overhead as index -1)."""
        coefficients = self._coefficients(threads)
        graph = _graph(model)
        guessed: list[str] = []
        costs = [OpCost(-1, "graph", coefficients.get("graph_count", 0.0), {})]
        for index, op in enumerate(graph.ops):
            features, note = _features(op, index)
            ms, missing = _cost(features, coefficients)
            if missing:
                note = (note + "; " if note else "") + f"no coefficient: {missing}"
            if note:
                guessed.append(f"op {index} {op.name} ({note})")
            costs.append(OpCost(index, op.name, ms, features, note))
        if guessed:
            warnings.warn(
                f"Latency profile {self.name!r} has not seen every op of this "
                f"model: {'; '.join(guessed)}. Their cost is a guess. Fix: fit or "
                "calibrate the profile on nets with these ops.",
                LatencyWarning,
                stacklevel=2,
            )
        return costs

    def _coefficients(self, threads: int) -> dict[str, float]:
        if threads not in self.coefficients:
            raise ValueError(
                f"Latency profile {self.name!r} has no coefficients for "
                f"threads={threads!r}; expected one of "
                f"{sorted(self.coefficients)}. Fix: pass one of those, or calibrate "
                "the profile with runs at that thread count."
            )
        return self.coefficients[threads]

    # --- fitting ----------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        samples: Iterable[LatencySample],
        *,
        name: str,
        device: dict | None = None,
        rests_on: str = "",
    ) -> "LatencyModel":
        """Non-negative least squares on relative errors, per thread count.

        `samples`: `LatencySample`s, or benchmark records
        (`keras_bnn_af.benchmarks.read_records`; see `samples_from_records`).
        """
        by_threads = _by_threads(samples)
        coefficients, errors = {}, {}
        for threads, group in by_threads.items():
            used = [f for f in FEATURES if any(s.features.get(f) for s in group)]
            rows = np.array([[s.features.get(f, 0.0) for f in used] for s in group])
            fitted = _nnls_relative(rows, np.array([s.latency_ms for s in group]))
            coefficients[threads] = dict(zip(used, map(float, fitted), strict=True))
            errors[threads] = _errors(group, coefficients[threads])
        return cls(name, coefficients, device or {}, errors, rests_on)

    def calibrate(
        self,
        samples: Iterable[LatencySample],
        *,
        name: str,
        groups: int = 3,
        base_threads: int | None = None,
        device: dict | None = None,
        rests_on: str = "",
    ) -> "LatencyModel":
        """This model's coefficients scaled per feature group to fit `samples`.

        # Arguments
            samples: runs on the target device (a few suffice for few groups):
                `LatencySample`s or benchmark records (`samples_from_records`).
            groups: 1, 2 or 3 scales (`GROUPS`, see the module docstring).
            base_threads: the thread count of this model whose coefficients
                are scaled for every thread count of `samples`; by default the
                same thread count when this model has it, else the lowest.
        """
        if groups not in GROUPS:
            raise ValueError(
                f"calibrate got groups={groups!r}; expected 1, 2 or 3 (one scale; "
                "binary and the rest; binary, float and overhead). Fix: pass one "
                "of those, no more than the number of distinct nets measured."
            )
        names = GROUPS[groups]
        coefficients, errors = {}, {}
        for threads, group in _by_threads(samples).items():
            base = self._base(threads, base_threads)
            rows = np.array([_group_work(s.features, base, names) for s in group])
            scales = _nnls_relative(rows, np.array([s.latency_ms for s in group]))
            coefficients[threads] = {
                feature: value * scales[names.index(_group_of(feature, names))]
                for feature, value in base.items()
            }
            errors[threads] = {
                **_errors(group, coefficients[threads]),
                "scales": dict(zip(names, map(float, scales), strict=True)),
            }
        return LatencyModel(name, coefficients, device or self.device, errors, rests_on)

    def _base(self, threads: int, base_threads: int | None) -> dict[str, float]:
        if base_threads is None:
            base_threads = (
                threads if threads in self.coefficients else min(self.coefficients)
            )
        return self._coefficients(base_threads)

    # --- files ------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "device": self.device,
            "rests_on": self.rests_on,
            "coefficients": {str(t): c for t, c in self.coefficients.items()},
            "fit_error": {str(t): e for t, e in self.fit_error.items()},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the model as JSON (atomically) and returns the path."""
        path = Path(path)
        write_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> "LatencyModel":
        """A shipped profile by name (`profile_names()`) or a saved JSON file."""
        path = Path(name_or_path)
        if not path.suffix and (PROFILES_DIR / f"{path}.json").is_file():
            path = PROFILES_DIR / f"{path}.json"
        if not path.is_file():
            raise ValueError(
                f"No latency profile {str(name_or_path)!r}. Expected one of "
                f"{', '.join(profile_names())} or the path of a JSON file written "
                "by LatencyModel.save. Fix: pass one of those names or an existing "
                "file."
            )
        data = json.loads(path.read_text())
        return cls(
            name=data["name"],
            coefficients={int(t): c for t, c in data["coefficients"].items()},
            device=data.get("device", {}),
            fit_error={int(t): e for t, e in data.get("fit_error", {}).items()},
            rests_on=data.get("rests_on", ""),
        )


def profile_names() -> list[str]:
    """The names of the profiles shipped with keras-bnn-af."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.json"))


def _graph(model) -> Graph:
    if isinstance(model, Graph):
        return model
    if isinstance(model, str | os.PathLike | bytes | bytearray):
        return read_graph(model)
    from keras_bnn_af.latency.corpus import convert  # a Keras model: TensorFlow

    return read_graph(convert(model))


def _features(op: Op, index: int) -> tuple[dict[str, float], str]:
    if op.name in KNOWN_OPS:
        return op_features(op, position=index), ""
    elements = max([t.size for t in op.inputs if t is not None] + [0])
    elements = max(elements, *(t.size for t in op.outputs))
    features = {"movement_count": 1.0, "movement_kelems": elements / 1e3}
    return features, "unknown op, priced as data movement"


def _cost(features: Mapping[str, float], coefficients: Mapping[str, float]):
    """ms of one op's features, and the features without a coefficient."""
    ms, missing = 0.0, []
    for feature, value in features.items():
        if feature in coefficients:
            ms += coefficients[feature] * value
        elif feature.startswith("elementwise_") and feature.endswith("_kelems"):
            fitted = [
                c
                for f, c in coefficients.items()
                if f.startswith("elementwise_") and f.endswith("_kelems")
            ]
            ms += (statistics.mean(fitted) if fitted else 0.0) * value
            missing.append(feature)
        else:
            missing.append(feature)
    return ms, ", ".join(missing)


def samples_from_records(records) -> list[LatencySample]:
    """`LatencySample`s of benchmark records (`keras-bnn-af bench --results`):
    one per model file and thread count, its latency the median of the runs'
    `avg_ms`, its features read from the record's `model_path`.

    # Raises
        ValueError: a record's model file is gone (the records keep its path
            and sha256, not the file).
    """
    runs: dict[tuple, list] = {}
    for record in records:
        runs.setdefault((record.model_sha256, record.threads), []).append(record)
    samples = []
    for (_, threads), group in runs.items():
        path = Path(group[0].model_path)
        if not path.is_file():
            raise ValueError(
                f"Benchmark record of {group[0].model_name!r} names the model file "
                f"{str(path)!r}, which no longer exists; expected the .tflite file "
                "that was benchmarked. Fix: restore it there, or drop its records."
            )
        latency = statistics.median(record.avg_ms for record in group)
        samples.append(LatencySample(path.stem, graph_features(path), threads, latency))
    return samples


def _by_threads(samples) -> dict[int, list[LatencySample]]:
    samples = list(samples)
    if samples and not isinstance(samples[0], LatencySample):
        samples = samples_from_records(samples)
    by_threads: dict[int, list[LatencySample]] = {}
    for sample in samples:
        if not (math.isfinite(sample.latency_ms) and sample.latency_ms > 0):
            raise ValueError(
                f"Sample {sample.name!r} has latency_ms={sample.latency_ms!r}; "
                "expected a positive finite time. Fix: drop failed runs before "
                "fitting."
            )
        by_threads.setdefault(sample.threads, []).append(sample)
    if not by_threads:
        raise ValueError(
            "No samples to fit; expected measured models (LatencySample). Fix: "
            "measure some nets first (see benchmarks/latency_model.py)."
        )
    return dict(sorted(by_threads.items()))


def _nnls_relative(rows: np.ndarray, latencies: np.ndarray) -> np.ndarray:
    """argmin_{c >= 0} sum_i ((rows_i . c - t_i) / t_i)^2."""
    from scipy.optimize import nnls

    coefficients, _ = nnls(rows / latencies[:, None], np.ones(len(latencies)))
    return coefficients


def _errors(samples: Sequence[LatencySample], coefficients: Mapping) -> dict:
    relative = [
        _cost(s.features, coefficients)[0] / s.latency_ms - 1.0 for s in samples
    ]
    return {
        "samples": len(samples),
        "median_abs_error": round(float(np.median(np.abs(relative))), 4),
        "within_10pct": round(float(np.mean(np.abs(relative) <= 0.10)), 4),
    }


def _group_of(feature: str, names: tuple[str, ...]) -> str:
    """The group of `names` (one of `GROUPS`) whose scale applies to `feature`."""
    if len(names) == 1:
        return names[0]
    if feature.startswith(_BINARY):
        return "binary"
    if len(names) == 2:
        return "other"
    return "overhead" if feature.endswith("_count") else "float"


def _group_work(features: Mapping, base: Mapping, names: tuple) -> list[float]:
    """Per group, the base model's ms for these features."""
    work = dict.fromkeys(names, 0.0)
    for feature, value in features.items():
        if feature in base:
            work[_group_of(feature, names)] += base[feature] * value
    return [work[name] for name in names]
