"""`keras-bnn-af nas`: differentiable binary architecture search (UBNAS).

```
keras-bnn-af nas --dataset mnist --epochs 10 --cells 3 --channels 8 \\
    --partial-channels 2 --out nas/mnist
keras-bnn-af nas --out nas/mnist --resume               # a killed search
keras-bnn-af nas --out nas/mnist --resume --train-derived --derived-epochs 5
```

Writes into `--out`: `config.json`, `history.jsonl` (one record per epoch),
`genotype.json`, `checkpoints/`, `alphas_normal.png` / `alphas_reduce.png`
(α per edge over the epochs) and `cell_normal.png` / `cell_reduce.png` (the
derived cells); with `--train-derived`, `derived/model.tflite` and
`derived/report.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from keras_bnn_af._cli_options import positive_float, positive_int

__all__ = ["add_command"]


def add_command(commands) -> None:
    """Adds `nas` to the `keras-bnn-af` subparsers `commands`."""
    from keras_bnn_af.searchers.ubnas.config import NasConfig
    from keras_bnn_af.searchers.ubnas.space import OPS

    defaults = NasConfig()
    nas = commands.add_parser(
        "nas",
        help="differentiable binary architecture search (UBNAS-style supernet)",
        description="Searches a DARTS-style cell of binary, LCE-fusable operations "
        "with partial channels, a weight-only warm-up and early stopping, then "
        "derives the cell (genotype.json). With --resume, the search saved in "
        "--out continues from its last epoch with its own settings (--epochs may "
        "raise its length). --train-derived trains the derived net, exports it "
        "with LCE and reports its size, accuracy and latency.",
    )
    nas.add_argument(
        "--dataset", default=defaults.dataset, help="mnist, mnist1d or tfds:NAME"
    )
    nas.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"search epochs in all (default: {defaults.epochs}; with --resume, "
        "the saved search's, or more)",
    )
    nas.add_argument("--cells", type=positive_int, default=defaults.cells)
    nas.add_argument("--nodes", type=positive_int, default=defaults.nodes)
    nas.add_argument("--channels", type=positive_int, default=defaults.channels)
    nas.add_argument(
        "--partial-channels",
        type=positive_int,
        default=defaults.partial_channels,
        metavar="K",
        help="each edge sees channels / K of its input's channels (PC-DARTS)",
    )
    nas.add_argument(
        "--ops",
        type=lambda text: tuple(
            name.strip() for name in text.split(",") if name.strip()
        ),
        default=defaults.ops,
        help=f"comma-separated candidate operations, among {', '.join(OPS)} "
        f"(default: {','.join(defaults.ops)})",
    )
    nas.add_argument("--binarizer", default=defaults.binarizer)
    nas.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    nas.add_argument(
        "--max-samples",
        type=positive_int,
        default=defaults.max_samples,
        help="at most this many examples per split",
    )
    nas.add_argument(
        "--warmup-epochs",
        type=int,
        default=None,
        help="weight-only epochs before α moves (default: half the epochs)",
    )
    nas.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="stop once the derived genotype is unchanged for this many epochs "
        "after the warm-up; 0: never early",
    )
    nas.add_argument(
        "--max-parameter-free",
        type=int,
        default=defaults.max_parameter_free,
        help="the collapse guard: parameter-free ops a derived normal cell keeps",
    )
    nas.add_argument(
        "--learning-rate", type=positive_float, default=defaults.learning_rate
    )
    nas.add_argument("--seed", type=int, default=defaults.seed)
    nas.add_argument("--out", type=Path, required=True, help="the search's folder")
    nas.add_argument(
        "--resume", action="store_true", help="continue the search saved in --out"
    )
    nas.add_argument(
        "--train-derived",
        action="store_true",
        help="then train the derived net, export it with LCE and report it",
    )
    nas.add_argument("--derived-epochs", type=positive_int, default=5)
    nas.add_argument(
        "--derived-channels",
        type=positive_int,
        default=None,
        help="the derived net's initial channels (default: --channels)",
    )
    nas.set_defaults(handler=_nas)


def _nas(args: argparse.Namespace) -> int:
    from keras_bnn_af.searchers.ubnas import plots
    from keras_bnn_af.searchers.ubnas.config import NasConfig
    from keras_bnn_af.searchers.ubnas.search import read_history, run_nas

    fields = {field.name for field in dataclasses.fields(NasConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    config = _resumed(args.out, given) if args.resume else NasConfig(**given)
    outcome = run_nas(config, args.out, resume=args.resume)
    history = read_history(args.out)
    saved = NasConfig.from_json(_read_json(args.out / "config.json"))
    plots.plot_search(history, saved.ops, saved.nodes, args.out)
    for kind in ("normal", "reduce"):
        plots.plot_cell(outcome.genotype, args.out / f"cell_{kind}.png", kind=kind)
    print(
        f"{outcome.epochs_run} epochs, {outcome.cpu_seconds / 60:.1f} CPU-minutes"
        + (
            f"; stopped early, {outcome.epochs_saved} epochs saved"
            if outcome.stopped_early
            else ""
        )
    )
    print(f"genotype: {args.out / 'genotype.json'}")
    for kind in ("normal", "reduce"):
        pairs = getattr(outcome.genotype, kind)
        print(f"  {kind}: " + ", ".join(f"{op}<-{source}" for op, source in pairs))
    if args.train_derived:
        _train_derived(args, outcome.genotype, saved)
    return 0


def _train_derived(args, genotype, config) -> None:
    from keras_bnn_af.searchers.ubnas.deploy import train_derived

    out = args.out / "derived"
    print(f"training the derived net for {args.derived_epochs} epochs into {out}")
    report = train_derived(
        genotype,
        config,
        out,
        epochs=args.derived_epochs,
        channels=args.derived_channels,
        verbose=2,
    )
    predicted = ", ".join(
        f"{name} {ms:.3g}" for name, ms in report["predicted_ms"].items()
    )
    print(
        f"test accuracy {report['test_accuracy']:.4f}, {report['params']} parameters, "
        f"binary MAC share {report['binary_mac_share']:.3f}, "
        f"{report['size_bytes']} bytes, verified {report['verified']}\n"
        f"host latency {report['host_latency_ms']:.3g} ms (LCE's interpreter on this "
        f"host: ranks models on this host only); predicted ms (1 thread): {predicted}"
    )


def _resumed(out: Path, given: dict):
    """The saved search's settings, with a larger `epochs` if given; any other
    option given must match the saved value (or be left at its default)."""
    from keras_bnn_af.searchers.ubnas.config import NasConfig

    path = out / "config.json"
    if not path.exists():
        return NasConfig(**given)  # run_nas explains that there is nothing to resume
    saved = NasConfig.from_json(_read_json(path))
    default, saved_json = NasConfig().to_json(), saved.to_json()
    for name, value in given.items():
        value = list(value) if isinstance(value, tuple) else value
        if name != "epochs" and value not in (default[name], saved_json[name]):
            option = "--" + name.replace("_", "-")
            raise ValueError(
                f"--resume got {option} {value!r}, but the search in {str(out)!r} "
                f"was started with {saved_json[name]!r}; expected only --epochs to "
                f"change. Fix: drop {option}, or start a new search with another --out."
            )
    epochs = max(saved.epochs, given.get("epochs", saved.epochs))
    return dataclasses.replace(saved, epochs=epochs)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())
