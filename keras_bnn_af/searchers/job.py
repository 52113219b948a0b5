"""The search job behind `keras-bnn-af search`: run, resume, rank and plot.

```python
from keras_bnn_af.searchers.job import SearchConfig, run_search

result = run_search(SearchConfig(space="gaaf", dataset="mnist1d", max_trials=40),
                    "searches/gaaf-mnist1d")
result.leaderboard[0]   # {"trial_id": ..., "af": "sin(x)", "score": 0.87, ...}
```

The output folder holds keras-tuner's project (`search/`: `oracle.json` and
one `trial_*/trial.json` per trial, saved after every trial), the settings
(`search_config.json`), and after the search `results.json`, `leaderboard.md`,
`fitness.png` (validation accuracy per trial and best so far) and
`best_<rank>.png` (the best AFs, drawn by `plot_binarizer`). A search killed at
any point resumes with `resume=True` (`--resume`): keras-tuner reloads every
finished trial, and the oracle's saved state (population, random generator)
continues the search; the trial that was running is run again. Every state
file is written atomically (`GeneticOracle`), so a kill while saving leaves
the previous version. A resumed search keeps its saved settings and budget:
a larger `max_trials` (`--max-trials`) raises the budget, and any other
setting given with another value than the saved one is an error, never
silently ignored. Candidates whose AF is not viable
(`keras_bnn_af.af.viability_problem`) are skipped before training, cost no
trial, and are listed under `skipped` in `results.json`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras_tuner

from keras_bnn_af import data, models, recipes
from keras_bnn_af._errors import did_you_mean
from keras_bnn_af._files import check_output_folder, write_atomic
from keras_bnn_af.searchers import hardware_aware
from keras_bnn_af.searchers.af_search import (
    GAAFHyperModel,
    TreeHyperModel,
    TreeSearch,
)
from keras_bnn_af.searchers.arch_search import ArchHyperModel
from keras_bnn_af.searchers.genetic import GeneticSearch
from keras_bnn_af.searchers.genetic_config import GeneticConfig
from keras_bnn_af.searchers.job_results import (
    ARCHITECTURE_SPACES,
    SearchResult,
    write_results,
)
from keras_bnn_af.searchers.pareto_oracle import ParetoSearch

__all__ = ["SPACES", "SearchConfig", "SearchResult", "run_search"]

SPACES = ("gaaf", "tree", "arch", "cell")
PROJECT = "search"
CONFIG_FILE = "search_config.json"
OBJECTIVE = keras_tuner.Objective("val_accuracy", "max")
#: Epochs per candidate for each offline dataset (its proxy model: `recipes`).
_EPOCHS = {"mnist1d": 10, "mnist": 1}
#: The `keras-bnn-af search` option of each setting (`genetic.<field>`: a
#: `GeneticConfig` field): the CLI reads the options given through it, and
#: messages name a setting by its option (the others by their field).
FLAGS = {
    "space": "--space",
    "dataset": "--dataset",
    "model": "--model",
    "max_trials": "--max-trials",
    "seed": "--seed",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "max_samples": "--max-samples",
    "units": "--units",
    "genetic.population_size": "--population",
    "genetic.selection": "--selection",
    "genetic.mutation_genes": "--mutation-genes",
    "objectives": "--objectives",
    "device_model": "--device-model",
    "measure": "--measure",
    "threads": "--threads",
    "latency_budget_ms": "--latency-budget-ms",
    "binary": "--binary",
    "identity": "--identity",
    "known_hosts": "--known-hosts",
}


@dataclass
class SearchConfig:
    """What to search and how (saved with the search; `--resume` reuses it).

    # Attributes
        space: `"gaaf"` (GAAF genomes), `"tree"` (PANGAEA-style AF trees) or
            `"arch"` (architectures: `arch_search.ArchHyperModel`; `model`
            then only names the baseline) or `"cell"` (the UBNAS cell space,
            `ubnas.hyper.CellHyperModel`, searched by the genetic oracle).
        dataset: a name `keras_bnn_af.data.load` accepts.
        model: the proxy network; None: the dataset's (`recipes.default_model`).
        max_trials: trials in all (a resumed search may raise it); candidates
            skipped as non-viable do not count.
        genetic: the GA settings (`GeneticConfig`; adaptive population and
            mutation by default).
        seed: seeds the oracle, the data shuffle and the weights.
        epochs: epochs per candidate; None: 10 for mnist1d, 1 for mnist.
        batch_size, learning_rate: training of each candidate (Adam, cosine).
        max_samples: cap on every split, for quick runs.
        kill_below: stop a candidate whose best validation accuracy is below
            this after one epoch (GAAF's 0.11); None never stops early.
        units: GAAF genome units, 1 or 2 (`"gaaf"` space only).
        max_failed: consecutive failed (diverged) trials that end the search.
        objectives: `["val_accuracy"]`, or `["val_accuracy", "latency"]` for a
            Pareto search of accuracy against latency (`hardware_aware`).
        device_model: the latency profile (`keras_bnn_af.latency`: `host`,
            `rpi4b`, `pixel1`, `m1` or a JSON file) predicting each trial's
            `latency_ms`; None: `host` when latency is an objective, else none.
        measure: measure each trial's latency instead: `"host"` (LCE's
            interpreter here), `local`, `ssh://user@host[:port]` or
            `adb[:SERIAL]` (LCE's benchmark binary there).
        binary, identity: the device's benchmark binary and ssh key file.
        known_hosts: ssh: the known_hosts file with the device's host key
            (checked strictly); None: the user's.
        threads: the threads of the predicted or measured inference.
        latency_budget_ms: a hard upper bound on latency (Pareto search only):
            slower trials rank behind every trial within it.
    """

    space: str = "gaaf"
    dataset: str = "mnist1d"
    model: str | None = None
    max_trials: int = 20
    genetic: GeneticConfig = dataclasses.field(default_factory=GeneticConfig)
    seed: int = 0
    epochs: int | None = None
    batch_size: int = 64
    learning_rate: float = 5e-3
    max_samples: int | None = None
    kill_below: float | None = 0.11
    units: int = 1
    max_failed: int = 10
    objectives: list[str] = dataclasses.field(default_factory=lambda: [OBJECTIVE.name])
    device_model: str | None = None
    measure: str | None = None
    threads: int = 1
    latency_budget_ms: float | None = None
    binary: str | None = None
    identity: str | None = None
    known_hosts: str | None = None

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(
                f"Unknown search space {self.space!r}; expected one of "
                f"{', '.join(map(repr, SPACES))}. Pass --space gaaf, tree, arch or "
                "cell."
            )
        data.check_name(self.dataset)
        self.model = self.model or recipes.default_model(self.dataset)
        self.epochs = self.epochs or _EPOCHS.get(self.dataset, 1)
        models.check_name(self.model)
        if isinstance(self.genetic, dict):
            self.genetic = GeneticConfig.from_json(self.genetic)
        self.genetic.check_budget(self.max_trials)
        self.objectives = list(hardware_aware.check_objectives(self.objectives))
        if self.latency_budget_ms is not None and not hardware_aware.is_pareto(self):
            raise ValueError(
                f"--latency-budget-ms {self.latency_budget_ms} needs latency among "
                "the objectives; expected --objectives val_accuracy,latency with it. "
                "Fix: add that, or drop --latency-budget-ms."
            )
        if self.space == "tree" and hardware_aware.is_pareto(self):
            raise ValueError(
                "--space tree does not search latency yet; expected --space gaaf or "
                "arch with --objectives val_accuracy,latency. Fix: use one of those, "
                "or drop latency from --objectives."
            )

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "genetic": self.genetic.to_json()}


def run_search(
    config: SearchConfig | Mapping[str, Any] | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    verbose: int | None = None,
) -> SearchResult:
    """Runs (or resumes) a GA search for binarizer AFs and writes its results.

    # Arguments
        config: the settings. A new search takes a `SearchConfig`, or a
            mapping of some of its fields (`"genetic"`: a mapping of
            `GeneticConfig` fields) with the defaults for the rest, or None
            for all defaults. With `resume` the saved settings apply, and
            `config` is checked against them: a `SearchConfig` states every
            field, a mapping only its own (what `--resume` passes: the flags
            given), None none. A larger `max_trials` raises the budget (saved
            for the next resume); a smaller one, or any other field with
            another value than the saved one, is an error.
        out_dir: the search folder, created with its missing parents.
        resume: continue the search saved in `out_dir`.
        progress: show keras-tuner's report of each trial, with a Keras
            progress bar per epoch on a terminal and one line per epoch
            otherwise, and a line when `resume` raises the budget. Silent by
            default.
        verbose: keras-tuner's verbosity (0: none, 1: bars, 2: lines);
            overrides `progress`.

    # Raises
        FileExistsError: `out_dir` exists and `resume` is False.
        ValueError: `resume` is True and `out_dir` holds no search, or
            `config` differs from the saved search (other than a larger
            `max_trials`); `config` names an unknown field; `out_dir` cannot
            be created (a file in the way, an unwritable parent).
    """
    if verbose is None:
        verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
    out = Path(out_dir)
    if resume:
        config, raised_from = _resumed_config(out, config)
        if raised_from is not None:
            write_atomic(out / CONFIG_FILE, json.dumps(config.to_json(), indent=2))
            if verbose:
                print(
                    f"raising the budget from {raised_from} to {config.max_trials} "
                    "trials (--max-trials)",
                    flush=True,
                )
    else:
        config = _check_new_folder(out, _new_config(config))
    splits = data.load(
        config.dataset,
        batch_size=config.batch_size,
        max_samples=config.max_samples,
        seed=config.seed,
    )
    latency = hardware_aware.trial_latency(config)
    baseline = latency and hardware_aware.baseline_latency(latency, config, splits)
    tuner = _tuner(config, out, splits, latency, baseline)
    if not resume:
        write_atomic(out / CONFIG_FILE, json.dumps(config.to_json(), indent=2))
    tuner.search(splits.train, validation_data=splits.validation, verbose=verbose)
    describe = tuner.hypermodel.formula if config.space in ARCHITECTURE_SPACES else None
    return write_results(
        tuner.oracle,
        out,
        config,
        latency=latency,
        baseline=baseline,
        describe=describe,
    )


def _new_config(config: SearchConfig | Mapping[str, Any] | None) -> SearchConfig:
    if isinstance(config, SearchConfig):
        return config
    return SearchConfig(**_requested(config))


def _requested(config: SearchConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings `config` asks for, as JSON-ready fields; unknown names refused."""
    if config is None:
        return {}
    if isinstance(config, SearchConfig):
        return config.to_json()
    requested = dict(config)
    if requested.get("genetic", 0) is None:
        del requested["genetic"]  # the defaults
    genetic = requested.get("genetic")
    if isinstance(genetic, GeneticConfig):
        requested["genetic"] = genetic.to_json()
    fields = [field.name for field in dataclasses.fields(SearchConfig)]
    names = [(name, fields, "SearchConfig") for name in requested]
    if isinstance(requested.get("genetic"), Mapping):
        requested["genetic"] = dict(requested["genetic"])
        known = GeneticConfig.field_names()
        names += [(name, known, "GeneticConfig") for name in requested["genetic"]]
    for name, known, owner in names:
        if name not in known:
            raise ValueError(
                f"Search settings got {name!r}, which is not a {owner} field; "
                f"expected one of {list(known)}.{did_you_mean(name, known)} Fix "
                "the name."
            )
    return requested


def _check_new_folder(out: Path, config: SearchConfig) -> SearchConfig:
    check_output_folder(out, "--out")
    if out.exists() and any(out.iterdir()):
        hint = " Pass --resume to continue it." if _holds_search(out) else ""
        raise FileExistsError(
            f"Search folder {str(out)!r} already exists and is not empty; expected "
            f"a new folder for a new search.{hint} Or pass another --out folder."
        )
    return config


def _resumed_config(
    out: Path, config: SearchConfig | Mapping[str, Any] | None
) -> tuple[SearchConfig, int | None]:
    """The saved settings, with a raised budget; and the budget it replaced.

    `config` must agree with the saved settings (module docstring); a genetic
    setting may also be given as the value the oracle resolved it to.
    """
    if not _holds_search(out):
        raise ValueError(
            f"--resume got {str(out)!r}, which holds no search (expected "
            f"{CONFIG_FILE} and {PROJECT}/oracle.json written by `keras-bnn-af "
            "search`). Pass the --out folder of an earlier search, or drop --resume "
            "to start a new one."
        )
    saved = SearchConfig(**json.loads((out / CONFIG_FILE).read_text()))
    before = saved.to_json()
    requested = _requested(config)
    budget = requested.pop("max_trials", saved.max_trials)
    genetic = requested.pop("genetic", None) or {}
    # The request over the saved settings: validated and normalized (a model
    # None is the dataset's, a selection alias its name, a tuple a list).
    merged = {**before, **requested}
    merged["genetic"] = {**before["genetic"], **genetic}
    merged = SearchConfig(**merged).to_json()
    differences = [
        (FLAGS.get(name, name), _shown(merged[name]), _shown(before[name]))
        for name in requested
        if merged[name] != before[name]
    ]
    resolved = _resolved_genetic(out)
    for name in genetic:
        given, kept = merged["genetic"][name], before["genetic"][name]
        adaptive = resolved.get(name, kept)
        if given not in (kept, adaptive):
            flag = f"genetic.{name}"
            shown = _shown(kept)
            if kept is None and adaptive is not None:
                shown += f", adaptive, resolved to {_shown(adaptive)}"
            differences.append((FLAGS.get(flag, flag), _shown(given), shown))
    if differences:
        details = "; ".join(
            f"{flag} {given} (saved: {kept})" for flag, given, kept in differences
        )
        raise ValueError(
            f"--resume got settings that differ from the search saved in "
            f"{str(out)!r}: {details}. Expected a resumed search to keep its saved "
            "settings; only --max-trials may change, to raise the budget. Drop "
            f"{' '.join(flag for flag, _, _ in differences)} to continue the saved "
            "search, or start a new search in another --out folder."
        )
    if budget < saved.max_trials:
        raise ValueError(
            f"--resume got --max-trials {budget}, below the budget of the search "
            f"saved in {str(out)!r} ({saved.max_trials} trials); expected a resumed "
            "search to keep or raise its budget. Drop --max-trials to continue with "
            f"{saved.max_trials} trials, or pass more."
        )
    if budget == saved.max_trials:
        return saved, None
    return dataclasses.replace(saved, max_trials=budget), saved.max_trials


def _resolved_genetic(out: Path) -> dict[str, Any]:
    """The GA settings the oracle resolved (adaptive ones filled in), if saved."""
    try:
        state = json.loads((out / PROJECT / "oracle.json").read_text())
        return dict(state["genetic"]["config"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _shown(value: Any) -> str:
    """A setting as it reads on the command line: `'mnist'`, `1 3`, `None`."""
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return repr(value)


def _holds_search(out: Path) -> bool:
    return (out / CONFIG_FILE).is_file() and (out / PROJECT / "oracle.json").is_file()


def _tuner(config: SearchConfig, out: Path, splits, latency, baseline):
    options = {
        "model": config.model,
        "input_shape": splits.input_shape,
        "num_classes": splits.num_classes,
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "steps_per_epoch": -(-splits.num_examples["train"] // config.batch_size),
        "kill_below": config.kill_below,
        "seed": config.seed,
        "latency": latency,
    }
    if config.space == "gaaf":
        search, hypermodel = (
            GeneticSearch,
            GAAFHyperModel(units=config.units, **options),
        )
    elif config.space == "tree":
        search, hypermodel = TreeSearch, TreeHyperModel(**options)
    elif config.space == "arch":
        del options["model"]
        search, hypermodel = GeneticSearch, ArchHyperModel(**options)
    else:
        from keras_bnn_af.searchers.ubnas.hyper import CellHyperModel

        del options["model"]
        search, hypermodel = GeneticSearch, CellHyperModel(**options)
    if hardware_aware.is_pareto(config):
        search = ParetoSearch
        goal = hardware_aware.pareto_arguments(config, baseline)
    else:
        goal = {"objective": OBJECTIVE}
    return search(
        hypermodel,
        **goal,
        max_trials=config.max_trials,
        config=config.genetic,
        seed=config.seed,
        max_consecutive_failed_trials=config.max_failed,
        directory=str(out),
        project_name=PROJECT,
        overwrite=False,
    )
