"""`keras-bnn-af-benchmark-model`: a host twin of LCE's `lce_benchmark_model`.

```
keras-bnn-af-benchmark-model --graph=model.tflite --num_threads=4 --num_runs=50
```

It takes the binary's flags (`--graph`, `--num_threads`, `--num_runs`,
`--warmup_runs`, `--min_secs`, `--max_secs`, `--use_xnnpack`,
`--use_indirect_bgemm`, `--use_reference_bconv`, `--enable_op_profiling`;
`--flag=value` or `--flag value`; booleans `true|false|1|0`), runs the model
in LCE's Python interpreter on random inputs (`--seed`, this twin's own
flag) and prints the binary's log (`keras_bnn_af.benchmarks.logs`), so that
code reading device logs over ssh or adb can be run, and tested, against a
host. It differs from the binary in that

- each phase runs exactly its number of runs unless `--min_secs` (default 0,
  the binary's is 1 s for the timed phase) asks for more, or `--max_secs`
  cuts it short: `count` is `--num_runs`;
- there is no op profile: `--enable_op_profiling=true` prints a note on
  stderr and nothing else;
- the memory line is the growth of this process's peak resident set size
  since the tool started.

A missing or unreadable model gives the binary's error lines and exit
status 1. Start-up is quick: LCE's interpreter extension is loaded without
the `larq_compute_engine` package, whose import would load TensorFlow.
"""

import argparse
import importlib.machinery
import importlib.util
import sys
import time
from importlib import metadata
from pathlib import Path

from keras_bnn_af.benchmarks.logs import format_benchmark_log

__all__ = ["load_interpreter", "main"]

TFLITE_IDENTIFIER = b"TFL3"
_WRAPPER = "larq_compute_engine.tflite.python.interpreter_wrapper_lite"
_TRUE = ("true", "1")
_FALSE = ("false", "0")


class BenchmarkFailed(Exception):
    """The binary's error lines for a run that could not start."""

    def __init__(self, *lines: str):
        super().__init__("\n".join(lines))
        self.lines = lines


def main(argv: list[str] | None = None) -> int:
    """Runs the twin; 0 on success, 1 (with `ERROR: ` lines) when it failed."""
    args = build_parser().parse_args(argv)
    start_rss = _peak_rss_mb()
    _print_parameters(args)
    try:
        _benchmark(args, start_rss)
    except BenchmarkFailed as failure:
        for line in (*failure.lines, "Benchmarking failed."):
            print(f"ERROR: {line}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-bnn-af-benchmark-model",
        description="Host twin of LCE's lce_benchmark_model: same flags, same log, "
        "timed in LCE's Python interpreter.",
    )
    parser.add_argument("--graph", default="", help="the .tflite model")
    parser.add_argument("--num_threads", type=int, default=-1, help="-1: TFLite's")
    parser.add_argument("--num_runs", type=_at_least(1), default=50)
    parser.add_argument("--warmup_runs", type=_at_least(1), default=1)
    parser.add_argument("--min_secs", type=float, default=0.0)
    parser.add_argument("--max_secs", type=float, default=150.0)
    for flag in ("use_xnnpack", "use_indirect_bgemm", "use_reference_bconv"):
        parser.add_argument(f"--{flag}", type=boolean, default=False)
    parser.add_argument("--enable_op_profiling", type=boolean, default=False)
    parser.add_argument("--seed", type=int, default=0, help="of the random inputs")
    return parser


def boolean(text: str) -> bool:
    """TFLite's flag booleans: `true`/`false` (any case) or `1`/`0`."""
    if text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    raise argparse.ArgumentTypeError(
        f"expected true or false, got {text!r}; pass e.g. --use_xnnpack=true"
    )


def load_interpreter(flatbuffer: bytes, **options):
    """LCE's native interpreter (`larq_compute_engine.testing.Interpreter`'s).

    # Arguments
        flatbuffer: the model.
        **options: `num_threads`, `use_reference_bconv`, `use_indirect_bgemm`,
            `use_xnnpack`.
    """
    return _wrapper_module().LiteInterpreter(
        flatbuffer,
        options["num_threads"],
        options["use_reference_bconv"],
        options["use_indirect_bgemm"],
        options["use_xnnpack"],
    )


def _benchmark(args: argparse.Namespace, start_rss: float | None) -> None:
    flatbuffer = _read_graph(args.graph)
    print(f"INFO: Loaded model {args.graph}")
    print(f"INFO: The input model file size (MB): {len(flatbuffer) / 1e6:g}")
    if args.enable_op_profiling:
        print(
            "WARNING: --enable_op_profiling=true: this host twin has no per-op "
            "profile (LCE's Python interpreter exposes none), so none is printed. "
            "Run lce_benchmark_model on the device for one.",
            file=sys.stderr,
        )
    start = time.perf_counter()
    interpreter = _construct(flatbuffer, args)
    init_us = (time.perf_counter() - start) * 1e6
    init_rss = _peak_rss_mb()
    print(f"INFO: Initialized session in {init_us / 1e3:.3f}ms.")
    inputs = _random_inputs(interpreter, args.seed)
    warmup_us = _run_phase(interpreter, inputs, args.warmup_runs, 0.0, args.max_secs)
    timed_us = _run_phase(
        interpreter, inputs, args.num_runs, args.min_secs, args.max_secs
    )
    overall_rss = _peak_rss_mb()
    memory = None
    if start_rss is not None:
        memory = (init_rss - start_rss, overall_rss - start_rss)
    print(
        format_benchmark_log(
            warmup_us,
            timed_us,
            init_us=init_us,
            warmup_runs=args.warmup_runs,
            num_runs=args.num_runs,
            min_secs=args.min_secs,
            max_secs=args.max_secs,
            memory_mb=memory,
        ),
        end="",
    )


def _print_parameters(args: argparse.Namespace) -> None:
    try:
        version = metadata.version("larq-compute-engine")
    except metadata.PackageNotFoundError:
        version = "unknown"
    print("INFO: STARTING!")
    print(
        "INFO: keras-bnn-af host twin of lce_benchmark_model: LCE's Python "
        f"interpreter (larq-compute-engine {version}), not the device binary."
    )
    for label, value in (
        ("Graph", args.graph),
        ("Num runs", args.num_runs),
        ("Min warmup runs", args.warmup_runs),
        ("Num threads", args.num_threads),
        ("Use xnnpack", int(args.use_xnnpack)),
        ("Use indirect bgemm", int(args.use_indirect_bgemm)),
        ("Use reference bconv", int(args.use_reference_bconv)),
        ("Enable op profiling", int(args.enable_op_profiling)),
    ):
        print(f"INFO: {label}: [{value}]")


def _read_graph(graph: str) -> bytes:
    """The model's bytes, or the binary's error lines for what went wrong."""
    if not graph:
        raise BenchmarkFailed(
            "Please specify the name of your TF Lite input file with --graph"
        )
    try:
        flatbuffer = Path(graph).read_bytes()
    except OSError:
        raise BenchmarkFailed(
            f"Could not open '{graph}'.", f"Failed to mmap model {graph}"
        ) from None
    if flatbuffer[4:8] != TFLITE_IDENTIFIER:
        raise BenchmarkFailed(
            "The model is not a valid Flatbuffer buffer",
            f"Failed to mmap model {graph}",
        )
    return flatbuffer


def _construct(flatbuffer: bytes, args: argparse.Namespace):
    try:
        return load_interpreter(
            flatbuffer,
            num_threads=args.num_threads,
            use_reference_bconv=args.use_reference_bconv,
            use_indirect_bgemm=args.use_indirect_bgemm,
            use_xnnpack=args.use_xnnpack,
        )
    except (RuntimeError, ValueError) as error:
        raise BenchmarkFailed(
            str(error).strip() or type(error).__name__,
            "Failed to initialize the interpreter",
        ) from None


def _random_inputs(interpreter, seed: int) -> list:
    """One random sample per input, batch 1 (as `benchmarks.host` times)."""
    from keras_bnn_af.benchmarks.host import _sample

    sample = _sample(interpreter, seed)
    return sample if isinstance(sample, list) else [sample]


def _run_phase(interpreter, inputs, runs, min_secs, max_secs) -> list[float]:
    """Durations (us) of `runs` runs, more until `min_secs`, none after `max_secs`."""
    times = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if (len(times) >= runs and elapsed >= min_secs) or elapsed > max_secs:
            return times
        before = time.perf_counter()
        try:
            interpreter.predict(inputs)
        except (RuntimeError, ValueError) as error:
            raise BenchmarkFailed(str(error).strip(), "Failed to invoke!") from None
        times.append((time.perf_counter() - before) * 1e6)


def _wrapper_module():
    """LCE's interpreter extension, loaded without importing its package."""
    if _WRAPPER in sys.modules:
        return sys.modules[_WRAPPER]
    package = importlib.util.find_spec("larq_compute_engine")
    if package is None:
        raise ImportError(
            "larq_compute_engine is not installed in this Python, and the host twin "
            "runs models in its interpreter. Install it: `pip install "
            "larq-compute-engine` (wheels: x86_64 Linux, macOS)."
        )
    for location in package.submodule_search_locations or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(
                location, "tflite", "python", f"interpreter_wrapper_lite{suffix}"
            )
            if path.is_file():
                spec = importlib.util.spec_from_file_location(_WRAPPER, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules[_WRAPPER] = module
                return module
    from larq_compute_engine.tflite.python import interpreter_wrapper_lite

    return interpreter_wrapper_lite


def _peak_rss_mb() -> float | None:
    """This process's peak resident set size (MB), `None` where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer of at least {minimum}, got {text!r}; "
                f"pass e.g. {minimum}"
            )
        return value

    return parse


if __name__ == "__main__":
    sys.exit(main())
