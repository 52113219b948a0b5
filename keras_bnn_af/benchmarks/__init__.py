"""Latency benchmarks of exported models: on this host, and on devices.

| module | what |
|---|---|
| `host` | `benchmark_tflite`, `compare_latency`, `latency_ratios`, `median_latencies` |
| `logs` | `parse_benchmark_log`: `lce_benchmark_model`'s log as a `BenchmarkLog` |
| `benchmark_model` | `keras-bnn-af-benchmark-model`, the binary's host twin |
| `compare` | `compare_on_device`: A, B, A-control rounds on one device |
| `records` | `BenchmarkRecord`, append-only JSON-lines results files |
| `bench_report` | markdown tables and plots of records (`keras-bnn-af report`) |
| `devices` | `SshDevice`, `LocalDevice`: probe, push, run the binary, clean up |

On a Raspberry Pi or a phone the runtime is LCE's `lce_benchmark_model` binary
(supplied by the user), whose log `parse_benchmark_log` reads: stdout and
stderr mixed, with or without `INFO: ` prefixes, times converted from
microseconds to milliseconds (`inference_avg_ms = avg_us / 1000`), the op
profile of `--enable_op_profiling=true` as `ops`. A log without a timed phase
(a crash, a missing model) is a `ValueError` quoting its last lines. The
`keras-bnn-af-benchmark-model` command takes the binary's flags and prints its
log from LCE's Python interpreter, so the same parsing runs against a host.
Names load on first use (see `keras_bnn_af._lazy`): the twin starts without
TensorFlow.
"""

from keras_bnn_af._lazy import lazy_attributes

_PACKAGE = "keras_bnn_af.benchmarks"
_MODULES = {
    f"{_PACKAGE}.host": [
        "KERNELS",
        "HostBenchmark",
        "benchmark_tflite",
        "compare_latency",
        "latency_ratios",
        "median_latencies",
    ],
    f"{_PACKAGE}.logs": ["BenchmarkLog", "parse_benchmark_log"],
    f"{_PACKAGE}.compare": ["Comparison", "compare_on_device"],
    f"{_PACKAGE}.records": ["BenchmarkRecord", "append_records", "read_records"],
    f"{_PACKAGE}.devices": [
        "DeviceError",
        "DeviceFacts",
        "HostDevice",
        "LocalDevice",
        "SshDevice",
        "SshError",
    ],
}
#: Public name -> (module, attribute), imported on first access.
_LAZY = {name: (module, name) for module, names in _MODULES.items() for name in names}
_SUBMODULES = (
    "bench_report",
    "benchmark_model",
    "compare",
    "devices",
    "host",
    "logs",
    "records",
)

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
