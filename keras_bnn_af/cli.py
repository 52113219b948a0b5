"""The `keras-bnn-af` command.

```
keras-bnn-af demo                      # the main job, offline MNIST
keras-bnn-af train --dataset mnist --model binarynet --epochs 3 --out runs/a
keras-bnn-af list                      # datasets, models and binarizers
```

Every command hides TensorFlow's logs (`keras_bnn_af._quiet`) unless `--verbose`
is given, and shows the progress of its long steps. Output folders (`train`,
`demo`, `search --out`) are created with their missing parents; output files
(`plot --out`, `bench --json`, `export --out`, `export --report`) go into an
existing folder. Both are checked before any work. `bench` and `report` live in
`keras_bnn_af.cli_bench`, `search` in `keras_bnn_af.cli_search`, `nas` in
`keras_bnn_af.cli_nas`, the shared
argument types in `keras_bnn_af._cli_options`.
"""

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from keras_bnn_af import _quiet, cli_bench, cli_nas, cli_search
from keras_bnn_af._cli_options import (
    check_new_output_file,
    positive_float,
    positive_int,
)

VERBOSE_HELP = (
    "show TensorFlow's logs and warnings (hidden by default; a TF_CPP_MIN_LOG_LEVEL "
    "you set is kept)"
)


def binarizer_spec(text: str) -> str | dict:
    """An alias, or a JSON config dict such as '{"class_name": "SteSign", ...}'."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"expected an alias or a JSON config dict, got {text!r}, which starts "
            f"like JSON but does not parse ({error}); pass an alias such as "
            "ste_sign or valid JSON such as "
            '\'{"class_name": "SteSign", "config": {"clip_value": 1.25}}\''
        ) from None


#: Where `bench --device ssh://...|adb` looks for LCE's benchmark binary.
def build_parser() -> argparse.ArgumentParser:
    from keras_bnn_af import __version__

    parser = argparse.ArgumentParser(
        prog="keras-bnn-af",
        description="Binary neural networks on Larq: train, search, export, benchmark.",
        epilog="Output folders (train, demo, search --out) are created with their "
        "missing parents; output files (plot --out, bench --json, export --out and "
        "--report) must go into an existing folder.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from keras_bnn_af import recipes

    train = commands.add_parser(
        "train",
        help="train a reference BNN and save the run",
        description="Train a reference BNN and save the run (model.h5, "
        "metrics.json, training_curve.png).",
        epilog=recipes.describe()
        + "\nOptions you give replace the recipe's; metrics.json records both.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--dataset",
        default="mnist",
        help="mnist, mnist1d or tfds:<name> (default: mnist)",
    )
    train.add_argument(
        "--model",
        default=None,
        help="see `keras-bnn-af list` (default: the dataset's, below)",
    )
    train.add_argument(
        "--binarizer",
        type=binarizer_spec,
        default=None,
        help="alias or JSON config dict (default: the model's own)",
    )
    for option, kind in (
        ("--epochs", positive_int),
        ("--batch-size", positive_int),
        ("--learning-rate", positive_float),
    ):
        train.add_argument(
            option, type=kind, default=None, help="default: the dataset's recipe"
        )
    train.add_argument("--optimizer", choices=["adam", "bop"], default="adam")
    _add_run_options(
        train,
        out_help="run folder, created with missing parents (default: "
        "runs/<dataset>-<model>-<time>)",
    )
    train.set_defaults(handler=_train)

    demo = commands.add_parser(
        "demo", help="main job: train, evaluate and report on offline MNIST"
    )
    demo.add_argument(
        "--epochs", type=positive_int, default=None, help="training epochs (default: 5)"
    )
    _add_run_options(
        demo,
        out_help="report folder, created with missing parents (default: "
        "demo_runs/<time>)",
    )
    demo.set_defaults(handler=_demo)

    plot = commands.add_parser(
        "plot", help="draw a binarizer: its function, output and pseudo-gradient"
    )
    plot.add_argument(
        "binarizer", type=binarizer_spec, help="e.g. gaaf:sin_x, rsign, ste_sign"
    )
    plot.add_argument(
        "--out",
        type=Path,
        required=True,
        help="PNG file to write, in an existing folder",
    )
    plot.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=(-3.0, 3.0),
        metavar=("LOW", "HIGH"),
        help="x range (default: -3 3)",
    )
    plot.add_argument("--overwrite", action="store_true")
    plot.set_defaults(handler=_plot)

    cli_search.add_command(commands)
    cli_nas.add_command(commands)

    export = commands.add_parser(
        "export", help="convert a trained model to a verified LCE .tflite file"
    )
    export.add_argument(
        "model",
        type=Path,
        metavar="MODEL",
        help="a run folder from `keras-bnn-af train`, a .h5 file or a SavedModel",
    )
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help=".tflite file to write, in an existing folder",
    )
    export.add_argument(
        "--verify-dataset",
        default=None,
        help="verify on this dataset's test split: mnist, mnist1d or tfds:<name> "
        "(default: the run's dataset, else seeded random inputs)",
    )
    export.add_argument(
        "--verify-samples",
        type=positive_int,
        default=None,
        help="number of verification samples (default: 256)",
    )
    export.add_argument(
        "--report",
        type=Path,
        default=None,
        help="JSON report file to write, in an existing folder",
    )
    export.add_argument(
        "--strict",
        action="store_true",
        help="fail if LCE leaves any binary layer as a float op",
    )
    export.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="write the file even if it does not match the Keras model",
    )
    export.add_argument(
        "--no-fold",
        action="store_true",
        help="keep threshold binarizers (RSign, monotone GAAF) as they are",
    )
    export.add_argument(
        "--latency",
        action="store_true",
        help="time the file against the same model with ste_sign on this host",
    )
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out and --report (and the --compare-float32 file)",
    )
    on_device = export.add_argument_group(
        "benchmark the written file on a device, as `bench --device` does"
    )
    on_device.add_argument(
        "--device",
        type=cli_bench.device_spec,
        default=None,
        metavar="DEVICE",
        help="local, ssh://user@host[:port] or adb[:SERIAL]",
    )
    on_device.add_argument(
        "--threads",
        type=cli_bench.threads_list,
        default=[1],
        help="thread counts, comma-separated, e.g. 1,4 (default: 1)",
    )
    on_device.add_argument(
        "--runs",
        type=positive_int,
        default=None,
        help="timed inferences per run (default: 50)",
    )
    cli_bench.add_device_options(on_device)
    on_device.add_argument(
        "--compare-float32",
        action="store_true",
        help="also write the float32 twin as <out>_float32.tflite and run it as "
        "--compare (B) against the export (A)",
    )
    export.set_defaults(handler=_export)

    cli_bench.add_commands(commands)

    listing = commands.add_parser("list", help="list datasets, models and binarizers")
    listing.set_defaults(handler=_list)
    for command in commands.choices.values():  # `keras-bnn-af demo --verbose` too
        command.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=VERBOSE_HELP,
        )
    return parser


def _add_run_options(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-samples",
        type=positive_int,
        default=None,
        help="cap every split at this many examples (quick runs)",
    )
    parser.add_argument("--out", type=Path, default=None, help=out_help)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="allow --out to exist; replaces the run's own files in it",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with _quiet.quieted(enabled=not args.verbose):
        try:
            return args.handler(args)
        except (ValueError, FileExistsError) as error:
            parser.exit(2, f"keras-bnn-af {args.command}: error: {error}\n")
    return 1  # unreachable: parser.exit raises SystemExit


def _train(args: argparse.Namespace) -> int:
    from keras_bnn_af import training

    config = training.TrainConfig(
        dataset=args.dataset,
        model=args.model,
        binarizer=args.binarizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        seed=args.seed,
        max_samples=args.max_samples,
    )
    out = args.out or _default_run_dir(args.dataset, config.model)
    recipe = config.from_recipe
    print(
        f"training {config.model} on {config.dataset}: {config.epochs} epochs, batch "
        f"{config.batch_size}, learning rate {config.learning_rate:g}"
        + (
            f" ({', '.join(recipe['fields'])} from the recipe)"
            if recipe["fields"]
            else ""
        )
    )
    result = training.train(config, out, overwrite=args.overwrite, progress=True)
    metrics = result.metrics
    print(
        f"test accuracy {metrics['test_accuracy']:.4f}, validation accuracy "
        f"{metrics['val_accuracy']:.4f}, {metrics['train_seconds']:.1f} s training; "
        f"run saved to {out}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from keras_bnn_af import demo

    run = demo.run_demo(
        args.out,
        epochs=args.epochs or demo.DEFAULT_EPOCHS,
        max_samples=args.max_samples,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=True,
    )
    accuracy = run.results["train"].metrics["test_accuracy"]
    export = run.results["export"]
    print(
        f"LCE export: {export.size_bytes:,} bytes ({export.size_ratio:.1f}x smaller "
        f"than float32), top-1 agreement with Keras {export.top1_agreement:.2%}"
    )
    print(f"Test accuracy: {accuracy:.2%}")
    print(f"Report: {run.out_dir / demo.REPORT_FILE}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    check_new_output_file(args.out, "--out", overwrite=args.overwrite)
    from keras_bnn_af import plots

    low, high = args.range
    if not low < high:
        raise ValueError(
            f"--range must be LOW HIGH with LOW < HIGH, got {low} {high}; "
            "pass e.g. --range -3 3."
        )
    title = args.binarizer if isinstance(args.binarizer, str) else None
    plots.plot_binarizer(args.binarizer, args.out, x_range=(low, high), title=title)
    print(f"wrote {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    check_new_output_file(args.out, "--out", overwrite=args.overwrite)
    check_new_output_file(args.report, "--report", overwrite=args.overwrite)
    twin_path = None
    if args.device is None:
        given = cli_bench.device_options_given(
            args, ("--runs", "runs"), ("--compare-float32", "compare_float32")
        )
        if given:
            raise ValueError(
                f"{', '.join(given)} need(s) --device. Expected: --device local, "
                "ssh://user@host[:port] or adb[:SERIAL] with those options. Fix: "
                "add --device, or drop them."
            )
    else:
        cli_bench.check_device_options(args)
        if args.compare_float32:
            twin_path = args.out.with_name(f"{args.out.stem}_float32.tflite")
            check_new_output_file(
                twin_path, "--compare-float32", overwrite=args.overwrite
            )
    from keras_bnn_af import benchmarks, converters, runs

    model = runs.load_trained_model(args.model)
    dataset = args.verify_dataset or runs.run_dataset(args.model)
    options = (
        {} if args.verify_samples is None else {"num_samples": args.verify_samples}
    )
    report = converters.export_lce(
        model,
        args.out,
        verify_with=dataset,
        on_float_conv="raise" if args.strict else "warn",
        on_mismatch="warn" if args.allow_mismatch else "raise",
        overwrite=args.overwrite,
        fold=not args.no_fold,
        latency=benchmarks.median_latencies if args.latency else None,
        progress=True,
        **options,
    )
    if args.report:
        converters.write_report(report, args.report)
    print(report.to_markdown(), end="")
    if args.device is None:
        return 0
    if twin_path is not None:
        from keras_bnn_af._files import write_atomic

        twin = converters.convert_float32(converters.float32_twin(model))
        write_atomic(twin_path, twin)
        print(f"wrote the float32 twin {twin_path} ({len(twin):,} bytes)")
    return cli_bench.bench_on_device(args, args.out, twin_path, command="export")


def _list(args: argparse.Namespace) -> int:
    from keras_bnn_af import data, models, quantizers

    print("datasets:  ", ", ".join(data.available_datasets()))
    print("models:    ", ", ".join(models.available_models()))
    print("binarizers:", ", ".join(quantizers.available_binarizers()))
    return 0


def _default_run_dir(dataset: str, model: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{dataset.replace(':', '_')}-{model}-{stamp}"


if __name__ == "__main__":
    sys.exit(main())
