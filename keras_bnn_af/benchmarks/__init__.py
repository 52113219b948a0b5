"""Latency benchmarks of exported models: on this host, and (later) on devices."""

from keras_bnn_af.benchmarks.host import (
    KERNELS,
    HostBenchmark,
    benchmark_tflite,
    compare_latency,
    median_latencies,
)

__all__ = [
    "KERNELS",
    "HostBenchmark",
    "benchmark_tflite",
    "compare_latency",
    "median_latencies",
]
