"""The main job: train the default BNN on offline MNIST, export it to LCE, verify
and benchmark it, and write a report folder.

The demo is a list of steps. Each step reads what earlier steps left in the
shared `DemoRun`, may write files into the report folder, and returns one
markdown section of `report.md`; new stages of the workflow are further steps
appended to `STEPS`. With `progress=True` (the `keras-bnn-af demo` command)
each step is announced by the first line of its docstring as it starts, and
the long ones (training, verification, kernel choice) report their progress.
"""

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from keras_bnn_af import benchmarks, converters, data, plots, runs, training

REPORT_FILE = "report.md"
CONFUSION_FILE = "confusion_matrix.png"
TFLITE_FILE = "model.tflite"
EXPORT_REPORT_FILE = "export_report.json"
EXPORT_SAMPLES = 10_000  # the whole MNIST test split
DEFAULT_EPOCHS = 5
#: Interleaved rounds and runs per round of the host latency table.
LATENCY_ROUNDS, LATENCY_RUNS = 7, 20


@dataclass
class DemoRun:
    """What the steps share: the folder, the config and each step's results."""

    out_dir: Path
    config: training.TrainConfig
    overwrite: bool = False
    progress: bool = False
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One part of `report.md`."""

    title: str
    body: str


Step = Callable[[DemoRun], Section]


def default_out_dir() -> Path:
    """`demo_runs/<date-time>`, a fresh folder for every run."""
    return Path("demo_runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def train_step(run: DemoRun) -> Section:
    """Training the BNN on the training split."""
    result = training.train(
        run.config, run.out_dir, overwrite=run.overwrite, progress=run.progress
    )
    run.results["train"] = result
    metrics = result.metrics
    rows = [
        ("dataset", f"{run.config.dataset} ({_examples(metrics['num_examples'])})"),
        ("model", run.config.model),
        ("binarizer", run.config.binarizer or "model default (ste_sign)"),
        ("epochs", run.config.epochs),
        ("training time", f"{metrics['train_seconds']:.0f} s"),
        ("parameters", f"{metrics['params']:,} ({metrics['binary_params']:,} binary)"),
        ("binary share of MACs", f"{metrics['binary_mac_ratio']:.1%}"),
        ("weights memory (Larq)", f"{metrics['memory_kib']:.1f} KiB"),
        ("validation accuracy", f"{metrics['val_accuracy']:.2%}"),
        ("test accuracy", f"{metrics['test_accuracy']:.2%}"),
    ]
    body = _table(("", ""), rows) + f"\n\n![training curve]({runs.CURVE_FILE})\n"
    return Section("Training", body)


def evaluate_step(run: DemoRun) -> Section:
    """Evaluating it on the test split."""
    model = run.results["train"].model
    arrays = data.load_arrays(run.config.dataset)
    count = run.config.max_samples or len(arrays.y_test)
    images = data.scale_images(arrays.x_test[:count]).numpy()
    labels = arrays.y_test[:count].astype(int)
    predictions = model.predict(images, batch_size=256, verbose=0).argmax(axis=1)
    matrix = np.zeros((arrays.num_classes, arrays.num_classes), int)
    np.add.at(matrix, (labels, predictions), 1)
    plots.plot_confusion(matrix, run.out_dir / CONFUSION_FILE, title="test split")
    per_class = matrix.diagonal() / matrix.sum(axis=1).clip(min=1)
    run.results["evaluate"] = {"confusion_matrix": matrix, "per_class": per_class}
    rows = [(digit, f"{accuracy:.2%}") for digit, accuracy in enumerate(per_class)]
    worst = int(per_class.argmin())
    body = (
        f"Accuracy per class on {count:,} test examples; the weakest class is "
        f"{worst} ({per_class[worst]:.2%}).\n\n"
        + _table(("class", "accuracy"), rows)
        + f"\n\n![confusion matrix]({CONFUSION_FILE})\n"
    )
    return Section("Evaluation", body)


def export_step(run: DemoRun) -> Section:
    """Exporting it to LCE and verifying the file against Keras."""
    model = run.results["train"].model
    # Converted once here, for its size, and timed by the benchmark step.
    twin = converters.convert_float32(converters.float32_twin(model))
    report = converters.export_lce(
        model,
        run.out_dir / TFLITE_FILE,
        verify_with=run.config.dataset,
        num_samples=run.config.max_samples or EXPORT_SAMPLES,
        overwrite=run.overwrite,
        float32_twin_size=False,
        progress=run.progress,
    )
    report = dataclasses.replace(report, float32_twin_size_bytes=len(twin))
    run.results["export"] = report
    run.results["float32_twin"] = twin
    converters.write_report(report, run.out_dir / EXPORT_REPORT_FILE)
    body = report.to_markdown().split("\n", 2)[2]  # drop the report's own title
    intro = (
        f"`{TFLITE_FILE}` is {report.size_bytes:,} bytes, "
        f"{report.size_ratio:.1f}x smaller than the float32 twin "
        f"({report.float32_twin_size_bytes:,} bytes); LCE agrees with Keras on "
        f"{report.top1_agreement:.2%} of {report.samples:,} test digits.\n\n"
    )
    return Section("Export to Larq Compute Engine", intro + body)


def benchmark_step(run: DemoRun) -> Section:
    """Timing the file and its float32 twin side by side on this host."""
    timed = benchmarks.compare_latency(
        {
            "LCE binary": run.out_dir / TFLITE_FILE,
            "float32 twin": run.results["float32_twin"],
        },
        rounds=LATENCY_ROUNDS,
        runs=LATENCY_RUNS,
        control=True,
        progress=run.progress,
    )
    ratios = benchmarks.latency_ratios(timed)
    run.results["benchmark"] = timed
    rows = [
        (
            name,
            f"{result.median_ms:.3f}",
            f"{result.p90_ms:.3f}",
            _ratio(ratios[name]),
        )
        for name, result in timed.items()
    ]
    twin = ratios["float32 twin"]
    body = (
        "Single-sample latency on this host through LCE's Python interpreter, "
        f"{LATENCY_ROUNDS} interleaved rounds of {LATENCY_RUNS} runs, all files "
        f"with one kernel configuration (`{timed['LCE binary'].kernel}`, the "
        "binary network's fastest), 1 thread. The control row times the binary "
        "network again in every round: its spread is the noise floor. Host "
        "figures rank models on this host only; they do not predict ARM latency "
        "(LCE's optimized binary kernels exist only for ARM).\n\n"
        + _table(
            ("model", "median ms", "p90 ms", "vs LCE binary, per round (range)"),
            rows,
        )
        + f"\n\nThe float32 twin takes {twin.median:.2f}x as long as the binary "
        f"network (rounds {twin.low:.2f}-{twin.high:.2f}).\n"
    )
    return Section("Host latency", body)


STEPS: list[Step] = [train_step, evaluate_step, export_step, benchmark_step]


def run_demo(
    out_dir: str | Path | None = None,
    *,
    epochs: int = DEFAULT_EPOCHS,
    max_samples: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    steps: list[Step] | None = None,
    progress: bool = False,
) -> DemoRun:
    """Runs every step on offline MNIST and writes `report.md` into `out_dir`.

    `out_dir` is created with its missing parents. `progress` announces each
    step on stdout and shows the progress of the long ones; silent by default.
    """
    config = training.TrainConfig(
        dataset="mnist", epochs=epochs, max_samples=max_samples, seed=seed
    )
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    runs.check_output_dir(out, overwrite=overwrite)
    run = DemoRun(out_dir=out, config=config, overwrite=overwrite, progress=progress)
    start = time.perf_counter()
    steps = STEPS if steps is None else steps
    sections = []
    for number, step in enumerate(steps, start=1):
        if progress:
            print(f"[{number}/{len(steps)}] {_describe(step)}", flush=True)
        sections.append(step(run))
    run.results["seconds"] = time.perf_counter() - start
    write_report(run, sections)
    return run


def write_report(run: DemoRun, sections: list[Section]) -> Path:
    header = (
        "# keras-bnn-af demo\n\n"
        f"Binary network `{run.config.model}` trained on `{run.config.dataset}` "
        f"with seed {run.config.seed}; the whole demo took "
        f"{run.results['seconds']:.0f} s.\n"
    )
    parts = [header] + [f"## {s.title}\n\n{s.body}" for s in sections]
    path = run.out_dir / REPORT_FILE
    path.write_text("\n".join(parts))
    return path


def _describe(step: Step) -> str:
    """The first line of the step's docstring, else its name."""
    lines = (step.__doc__ or "").strip().splitlines()
    return lines[0] if lines else getattr(step, "__name__", repr(step))


def _ratio(ratio) -> str:
    return f"{ratio.median:.2f}x ({ratio.low:.2f}-{ratio.high:.2f})"


def _table(header: tuple, rows: list[tuple]) -> str:
    lines = [
        "| " + " | ".join(map(str, header)) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def _examples(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {split}" for split, count in counts.items())
