"""The `keras-bnn-af search` command: its options and its run.

```
keras-bnn-af search --space gaaf --dataset mnist1d --max-trials 60 --out s/gaaf
keras-bnn-af search --space arch --objectives val_accuracy,latency \\
    --device-model rpi4b --latency-budget-ms 2 --out s/arch-pi
```
"""

import argparse
from pathlib import Path

from keras_bnn_af._cli_options import positive_float, positive_int

__all__ = ["add_command"]


def add_command(commands) -> None:
    """Adds `search` to the `keras-bnn-af` subparsers `commands`."""
    search = commands.add_parser(
        "search",
        help="genetic search for binarizer activation functions or architectures",
        description="Genetic search for binarizer activation functions (gaaf, "
        "tree) or binary architectures (arch), for validation accuracy or, with "
        "--objectives val_accuracy,latency, for accuracy against latency on a "
        "device (a Pareto search; latency predicted by --device-model or measured "
        "with --measure). With "
        "--resume, the search saved in --out continues with its own settings: "
        "--max-trials may raise its budget, and any other option given must "
        "match the saved value.",
    )
    # The settings' defaults are SUPPRESS, so `args` holds only the options
    # given (`search_settings`, `job.FLAGS`); the defaults in the help are
    # SearchConfig's and GeneticConfig's, which fill in the rest of a new search.
    given = argparse.SUPPRESS
    search.add_argument(
        "--space",
        choices=["gaaf", "tree", "arch", "cell"],
        default=given,
        help="gaaf: GAAF genomes; tree: PANGAEA-style AF trees; arch: binary "
        "architectures (depth, widths, kernels, binarizer per block, pooling); "
        "cell: the UBNAS cell space of `keras-bnn-af nas` (default: gaaf)",
    )
    search.add_argument("--dataset", default=given, help="(default: mnist1d)")
    search.add_argument(
        "--model",
        default=given,
        help="proxy network (default: the dataset's: conv1d for mnist1d, binarynet "
        "for mnist)",
    )
    search.add_argument(
        "--max-trials",
        type=positive_int,
        default=given,
        help="trials in all (default: 20); with --resume, a larger budget for the "
        "saved search",
    )
    search.add_argument(
        "--population",
        type=positive_int,
        default=given,
        help="GA population size (default: adaptive, about max-trials / 12, 4-20)",
    )
    search.add_argument(
        "--selection",
        choices=["tournament", "elitism", "roulette", "per_generation"],
        default=given,
        help="parent selection (default: tournament; GAAF: per_generation)",
    )
    search.add_argument(
        "--mutation-genes",
        type=positive_int,
        nargs=2,
        default=given,
        metavar=("LOW", "HIGH"),
        help="genes a child mutates (default: adaptive, 1-1 for GAAF genomes; "
        "GAAF: 1 3)",
    )
    search.add_argument(
        "--epochs",
        type=positive_int,
        default=given,
        help="epochs per candidate (default: 10 for mnist1d, 1 otherwise)",
    )
    search.add_argument(
        "--batch-size", type=positive_int, default=given, help="(default: 64)"
    )
    search.add_argument(
        "--learning-rate",
        type=positive_float,
        default=given,
        help="Adam (default: 5e-3, as GAAF)",
    )
    search.add_argument(
        "--units", type=int, choices=[1, 2], default=given, help="(default: 1)"
    )
    search.add_argument("--seed", type=int, default=given, help="(default: 0)")
    search.add_argument(
        "--max-samples",
        type=positive_int,
        default=given,
        help="cap every split at this many examples, for quick runs (default: no cap)",
    )
    search.add_argument(
        "--objectives",
        type=_objectives,
        default=given,
        help="val_accuracy (default) or val_accuracy,latency (a Pareto search)",
    )
    search.add_argument(
        "--device-model",
        default=given,
        help="latency profile predicting each trial's latency: host, rpi4b, "
        "pixel1, m1 or a JSON file from LatencyModel.save (default: host with a "
        "latency objective; given alone, latency is recorded, not optimized)",
    )
    search.add_argument(
        "--measure",
        default=given,
        metavar="DEVICE",
        help="measure each trial's latency instead of predicting it: host (LCE's "
        "interpreter here), local, ssh://user@host[:port] or adb[:SERIAL] (LCE's "
        "benchmark binary there, --binary)",
    )
    search.add_argument(
        "--binary",
        default=given,
        help="--measure on a device: LCE's lce_benchmark_model for it",
    )
    search.add_argument("--identity", default=given, help="ssh private key file")
    search.add_argument(
        "--known-hosts",
        default=given,
        help="ssh: the known_hosts file holding the device's host key (checked "
        "strictly; default: yours)",
    )
    search.add_argument(
        "--threads",
        type=positive_int,
        default=given,
        help="threads of the predicted or measured inference (default: 1)",
    )
    search.add_argument(
        "--latency-budget-ms",
        type=positive_float,
        default=given,
        help="hard latency bound of a Pareto search: slower trials rank behind "
        "every trial within it",
    )
    search.add_argument(
        "--out",
        type=Path,
        required=True,
        help="search folder (created with missing parents)",
    )
    search.add_argument(
        "--resume",
        action="store_true",
        help="continue the search saved in --out, with its settings and budget "
        "(--max-trials may raise the budget)",
    )
    search.set_defaults(handler=_search)


def _objectives(text: str) -> list[str]:
    """`--objectives`: comma-separated names (checked by `SearchConfig`)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def search_settings(args: argparse.Namespace) -> dict:
    """The settings of the `search` options given, as SearchConfig fields."""
    from keras_bnn_af.searchers.job import FLAGS

    settings: dict = {}
    for field, flag in FLAGS.items():
        dest = flag.removeprefix("--").replace("-", "_")
        if not hasattr(args, dest):  # not given: SUPPRESS left no attribute
            continue
        value = getattr(args, dest)
        group, _, name = field.rpartition(".")
        if group:  # "genetic"
            value = tuple(value) if name == "mutation_genes" else value
            settings.setdefault(group, {})[name] = value
        else:
            settings[name] = value
    return settings


def _search(args: argparse.Namespace) -> int:
    from keras_bnn_af.searchers import run_search

    result = run_search(
        search_settings(args), args.out, resume=args.resume, progress=True
    )
    print((args.out / "leaderboard.md").read_text(), end="")
    print(
        f"{result.completed} trials completed, {result.failed} failed, "
        f"{len(result.skipped)} non-viable candidates skipped untrained; results in "
        f"{args.out}"
    )
    return 0
