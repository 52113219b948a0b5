"""The UBNAS search loop: which step moves what, warm-up, early stop, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.searchers.ubnas import search
from keras_bnn_af.searchers.ubnas.config import NasConfig
from keras_bnn_af.searchers.ubnas.space import DEFAULT_OPS
from keras_bnn_af.searchers.ubnas.supernet import Supernet

TINY = {
    "dataset": "mnist1d",
    "cells": 3,
    "nodes": 1,
    "channels": 4,
    "partial_channels": 2,
    "batch_size": 32,
    "max_samples": 64,
}


def _trainer():
    config = NasConfig(**TINY, epochs=2)
    keras.utils.set_random_seed(0)
    net = Supernet.for_search(config, (40, 1), 10)
    x = np.random.default_rng(0).normal(size=(8, 40, 1)).astype(np.float32)
    y = np.arange(8) % 10
    return search._Trainer(net, config), x, y


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return [
        not np.array_equal(b, v.numpy()) for b, v in zip(before, variables, strict=True)
    ]


def test_the_architecture_step_moves_alpha_and_beta_only():
    trainer, x, y = _trainer()
    arch, weights = trainer.net.architecture_variables, trainer.net.weight_variables
    arch_before, weights_before = _values(arch), _values(weights)
    trainer.arch_step(x, y)
    assert all(_changed(arch_before, arch))
    assert not any(_changed(weights_before, weights))


def test_the_weight_step_moves_weights_only():
    trainer, x, y = _trainer()
    arch, weights = trainer.net.architecture_variables, trainer.net.weight_variables
    arch_before, weights_before = _values(arch), _values(weights)
    trainer.weight_step(x, y)
    assert not any(_changed(arch_before, arch))
    kernels = [v for v in weights if "kernel" in v.name]
    kernels_before = [
        b for b, v in zip(weights_before, weights, strict=True) if "kernel" in v.name
    ]
    assert kernels and all(_changed(kernels_before, kernels))


def _record(epoch, phase, normal_op):
    genotype = {
        "nodes": 1,
        "normal": [[normal_op, 0], ["bconv_3x3", 1]],
        "reduce": [["bconv_3x3", 0], ["bconv_3x3", 1]],
    }
    return {"epoch": epoch, "phase": phase, "genotype": genotype}


@pytest.mark.parametrize(
    ("ops", "patience", "stops"),
    [
        (["bconv_5x5", "skip", "skip", "skip"], 2, True),
        (["bconv_5x5", "skip", "skip"], 2, False),  # the warm-up does not count
        (["bconv_5x5", "skip", "bconv_5x5", "skip"], 2, False),
        (["skip", "skip", "skip", "skip"], 0, False),  # patience 0: never early
        (["skip", "skip", "skip", "skip"], 3, False),  # 2 searched epochs
    ],
)
def test_early_stop_needs_patience_epochs_of_one_genotype_after_the_warmup(
    ops, patience, stops
):
    config = NasConfig(**TINY, epochs=10, warmup_epochs=1, patience=patience)
    history = [
        _record(epoch, "search" if epoch else "warm-up", op)
        for epoch, op in enumerate(ops)
    ]
    assert search._stable(history, config) is stops


def test_alpha_rests_during_the_warmup_and_moves_after_it(tmp_path):
    outcome = search.run_nas(
        NasConfig(**TINY, epochs=3, warmup_epochs=2, patience=0),
        tmp_path / "nas",
        log=lambda line: None,
    )
    history = search.read_history(tmp_path / "nas")
    assert [r["phase"] for r in history] == ["warm-up", "warm-up", "search"]
    assert history[0]["alphas"] == history[1]["alphas"]
    assert history[2]["alphas"] != history[1]["alphas"]
    assert outcome.epochs_run == 3 and not outcome.stopped_early
    assert outcome.cpu_seconds == pytest.approx(sum(r["cpu_seconds"] for r in history))
    saved = json.loads((tmp_path / "nas" / "genotype.json").read_text())
    assert saved == history[-1]["genotype"]
    assert {"step_ms", "peak_rss_mb", "val_accuracy", "steps"} <= set(history[-1])


def test_a_search_folder_is_never_overwritten_and_resume_needs_one(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a search.*--resume"):
        search.run_nas(NasConfig(**TINY, epochs=2), tmp_path / "old")
    assert (tmp_path / "old" / "config.json").read_text() == "{}"
    with pytest.raises(FileNotFoundError, match="--resume found no search"):
        search.run_nas(NasConfig(**TINY, epochs=2), tmp_path / "new", resume=True)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"channels": 6, "partial_channels": 4}, "channels=6; expected a multiple of"),
        ({"epochs": 4, "warmup_epochs": 4}, "warmup_epochs=4; expected 0 <= "),
        ({"ops": ("bconv_3x3", "skip")}, "without 'zero'|with 'zero'"),
        ({"ops": ("zero", "bconv3x3")}, "did you mean 'bconv_3x3'"),
        ({"cells": 2}, "cells=2; expected an integer >= 3"),
    ],
)
def test_impossible_settings_are_refused_naming_the_value(settings, message):
    with pytest.raises(ValueError, match=message):
        NasConfig(**{**TINY, **settings})


def test_an_unknown_op_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        NasConfig(**TINY, ops=("zero", "conv_7x7"))
    assert all(name in str(error.value) for name in DEFAULT_OPS)


def test_a_killed_search_resumes_from_its_last_epoch(tmp_path):
    out = tmp_path / "nas"
    command = [
        sys.executable,
        "-m",
        "keras_bnn_af.cli",
        "nas",
        *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()],
        "--epochs=3",
        "--warmup-epochs=1",
        "--patience=0",
        f"--out={out}",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list((out / "checkpoints").glob("ckpt-1.index")):
            assert process.poll() is None, "the search ended before its first epoch"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done = len(search.read_history(out))
    assert 1 <= done < 3, "killed after the search had finished: nothing to resume"
    lines = []
    outcome = search.run_nas(
        NasConfig(**TINY, epochs=3), out, resume=True, log=lines.append
    )
    assert lines[0].startswith(f"resuming {out} at epoch {done + 1} of 3")
    history = search.read_history(out)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    assert outcome.epochs_run == 3
    saved = json.loads((Path(out) / "config.json").read_text())
    assert saved["warmup_epochs"] == 1 and saved["patience"] == 0
    from keras_bnn_af import cli

    assert cli.main(["nas", f"--out={out}", "--resume"]) == 0
    for name in ("alphas_normal", "alphas_reduce", "cell_normal", "cell_reduce"):
        assert (out / f"{name}.png").stat().st_size > 1000


def test_resume_refuses_a_changed_setting_and_keeps_the_saved_ones(tmp_path, capsys):
    from keras_bnn_af import cli

    out = tmp_path / "nas"
    out.mkdir()
    (out / "config.json").write_text(NasConfig(**TINY, epochs=3).dumps())
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["nas", f"--out={out}", "--resume", "--channels=16"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "--channels 16" in message and "started with 4" in message
    assert "--epochs" in message
    assert json.loads((out / "config.json").read_text())["channels"] == 4
