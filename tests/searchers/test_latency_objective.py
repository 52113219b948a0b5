"""`latency_ms` as a trial metric: predicted or measured, reported every epoch.

The ssh tests measure over ssh against the throwaway sshd of
`tests/sshd_server.py` (its own host key in its own known_hosts file, never
the user's), running the host twin `keras-bnn-af-benchmark-model` there.
"""

import json
import sys
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pytest

from keras_bnn_af.latency import LatencyModel, LatencyWarning, graph_features
from keras_bnn_af.latency.corpus import convert
from keras_bnn_af.searchers import GAAFHyperModel
from keras_bnn_af.searchers.latency_objective import LATENCY_METRIC, TrialLatency
from keras_bnn_af.testing import binary_block_net
from tests.sshd_server import needs_sshd

#: The host twin as a device binary: a script pushed and run like
#: lce_benchmark_model (its shebang is this venv's python, on this machine).
TWIN_SCRIPT = Path(sys.executable).parent / "keras-bnn-af-benchmark-model"


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A toy profile: 1 ms per million binary MACs and per LceQuantize."""
    path = tmp_path_factory.mktemp("profile") / "toy.json"
    LatencyModel("toy", {1: {"bconv_macs": 1.0, "quantize_count": 1.0}}).save(path)
    return path


def test_predicted_latency_is_the_profile_on_the_converted_model(profile):
    net = binary_block_net("rsign", filters=(32, 32))
    features = graph_features(convert(net))
    expected = features["bconv_macs"] + features["quantize_count"]
    latency = TrialLatency(profile)
    with pytest.warns(LatencyWarning, match="op 0 CONV_2D"):  # a toy profile
        assert latency(net) == pytest.approx(expected)
    assert latency.name == "toy"


def test_measured_on_the_host_is_a_positive_time():
    latency = TrialLatency(measure="host")
    assert latency(binary_block_net("ste_sign", filters=(8,))) > 0
    assert latency.name == "measured on host"


def test_measured_on_a_device_runs_the_benchmark_binary_there():
    # `local`: the device code path (probe, push, run, parse, clean up) on this
    # machine with the host twin, as ssh and adb run it elsewhere.
    latency = TrialLatency(measure="local")
    assert latency(binary_block_net("ste_sign", filters=(8,))) > 0
    assert latency.name == "measured on local"


def _ssh_url(sshd) -> str:
    return f"ssh://{sshd.target}:{sshd.port}"


def _logins(sshd) -> int:
    """Sessions the test sshd has let in so far (its log, LogLevel INFO)."""
    return (sshd.root / "sshd.log").read_text().count("Accepted publickey")


@needs_sshd
def test_measured_over_ssh_runs_the_benchmark_binary_on_the_device(sshd, tmp_path):
    latency = TrialLatency(
        measure=_ssh_url(sshd),
        binary=TWIN_SCRIPT,
        identity=sshd.key,
        known_hosts=sshd.known_hosts,
    )
    net = binary_block_net("ste_sign", filters=(8,))
    logins = _logins(sshd)
    measured = latency(net)
    assert _logins(sshd) > logins  # measured through the server
    assert isinstance(measured, float) and measured > 0
    assert latency.name == f"measured on {_ssh_url(sshd)}"
    # Host keys are still checked strictly: a known_hosts file without the
    # server's key fails the measurement instead of trusting it.
    from keras_bnn_af.benchmarks.devices import SshError

    empty = tmp_path / "known_hosts"
    empty.write_text("")
    strict = TrialLatency(
        measure=_ssh_url(sshd), binary=TWIN_SCRIPT, identity=sshd.key, known_hosts=empty
    )
    with pytest.raises(SshError) as error:
        strict(net)
    assert error.value.kind == "host-key-unknown"
    assert empty.read_text() == ""


@needs_sshd
def test_a_pareto_search_measures_every_trial_over_ssh(sshd, tmp_path):
    from keras_bnn_af.searchers import run_search

    out = tmp_path / "ssh-search"
    settings = {
        "dataset": "mnist1d",
        "epochs": 1,
        "max_samples": 64,
        "batch_size": 64,
        "max_trials": 2,
        "seed": 3,
        "objectives": ["val_accuracy", "latency"],
        "measure": _ssh_url(sshd),
        "binary": str(TWIN_SCRIPT),
        "identity": str(sshd.key),
        "known_hosts": str(sshd.known_hosts),
    }
    logins = _logins(sshd)
    result = run_search(settings, out)
    results = json.loads((out / "results.json").read_text())
    done = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert result.completed == len(done) == 2
    assert all(t["latency_ms"] > 0 for t in done)
    assert results["pareto"]["baseline_latency_ms"] > 0
    assert _logins(sshd) >= logins + 3  # the baseline and both trials
    leaderboard = (out / "leaderboard.md").read_text()
    assert f"## Pareto front (latency: measured on {_ssh_url(sshd)})" in leaderboard


def test_bad_settings_fail_when_made_not_in_the_first_trial(profile):
    with pytest.raises(ValueError, match="--measure 'device' is not a device"):
        TrialLatency(measure="device")
    with pytest.raises(ValueError, match="needs LCE's benchmark binary"):
        TrialLatency(measure="ssh://pi@raspberrypi.local")
    with pytest.raises(ValueError, match="--binary '/no/such' does not exist"):
        TrialLatency(measure="adb", binary="/no/such")
    with pytest.raises(ValueError, match=r"threads=4; expected one of \[1\]"):
        TrialLatency(profile, threads=4)
    with pytest.raises(ValueError, match="No latency profile 'pixel9'"):
        TrialLatency("pixel9")


def test_every_epoch_of_a_trial_reports_latency_ms():
    calls = []

    def latency(model):
        calls.append(model.name)
        return 2.5

    hypermodel = GAAFHyperModel(
        model="conv1d", epochs=2, kill_below=None, latency=latency
    )
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    model = hypermodel.build(hp)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 40, 1)), rng.integers(0, 10, 32)
    history = hypermodel.fit(hp, model, x, y, validation_data=(x, y), batch_size=16)
    assert history.history[LATENCY_METRIC] == [2.5, 2.5]
    assert len(calls) == 1  # once per trial, before training
