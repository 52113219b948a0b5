"""CellHyperModel: the UBNAS cell space as a fixed-length genome that builds the
derived Larq net and that a GeneticSearch runs over."""

import random

import keras_tuner as kt
import larq as lq
import numpy as np
import pytest

from keras_bnn_af import data, models
from keras_bnn_af._keras import keras
from keras_bnn_af.searchers import GeneticSearch, operators
from keras_bnn_af.searchers.ubnas.genotype import Genotype
from keras_bnn_af.searchers.ubnas.hyper import SEARCH_OPS, CellHyperModel
from keras_bnn_af.searchers.ubnas.space import DEFAULT_OPS

MNIST1D, MNIST = (40, 1), (28, 28, 1)


def _space(hypermodel) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp


def _with(hp: kt.HyperParameters, values: dict) -> kt.HyperParameters:
    trial_hp = hp.copy()
    trial_hp.values = dict(values)
    return trial_hp


def _values(normal, reduce) -> dict:
    """A genome from per-kind `[(op, input), ...]` pairs, in Genotype order."""
    values = {}
    for kind, pairs in (("normal", normal), ("reduce", reduce)):
        for index, (op, source) in enumerate(pairs):
            node, branch = divmod(index, 2)
            values[f"{kind}_{node}_{branch}_op"] = op
            values[f"{kind}_{node}_{branch}_input"] = source
    return values


NORMAL = (("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 0), ("bconv_5x5", 2))
REDUCE = (("avg_pool_3x3", 1), ("dil_bconv_3x3", 0), ("skip", 0), ("bconv_3x3", 2))


@pytest.mark.parametrize("nodes", [1, 2, 3])
def test_space_is_a_fixed_length_genome_of_ops_and_inputs(nodes):
    hp = _space(CellHyperModel(nodes=nodes))
    # 2 cell kinds x nodes x 2 branches x (op, input).
    assert len(hp.space) == 2 * nodes * 2 * 2 == 8 * nodes
    assert not any(h.conditions for h in hp.space)
    ops = list(DEFAULT_OPS[1:])
    assert "zero" not in ops and list(SEARCH_OPS) == ops
    declared = {h.name: h for h in hp.space}
    for kind in ("normal", "reduce"):
        for node in range(nodes):
            for branch in (0, 1):
                op = declared[f"{kind}_{node}_{branch}_op"]
                source = declared[f"{kind}_{node}_{branch}_input"]
                assert isinstance(op, kt.engine.hyperparameters.Choice)
                assert op.values == ops and not op.ordered
                assert isinstance(source, kt.engine.hyperparameters.Int)
                assert (source.min_value, source.max_value) == (0, node + 1)
                assert hp.get(op.name) == "bconv_3x3"
                assert hp.get(source.name) == node + branch
    # The defaults are a valid genome: a chain of 3x3 binary convs.
    default = CellHyperModel(nodes=nodes).genotype(hp.values)
    chain = tuple(("bconv_3x3", i // 2 + i % 2) for i in range(2 * nodes))
    assert default.normal == default.reduce == chain


def test_genotype_of_hand_set_values_and_its_key_and_formula():
    hypermodel = CellHyperModel(nodes=2)
    values = _values(NORMAL, REDUCE)
    assert set(values) == {h.name for h in _space(hypermodel).space}
    assert hypermodel.genotype(values) == Genotype(2, NORMAL, REDUCE)
    assert hypermodel.architecture_key(values) == {
        "nodes": 2,
        "normal": [list(pair) for pair in NORMAL],
        "reduce": [list(pair) for pair in REDUCE],
    }
    assert hypermodel.formula(values) == (
        "normal: bconv_3x3(0) + skip(1), max_pool_3x3(0) + bconv_5x5(2) | "
        "reduce: avg_pool_3x3(1) + dil_bconv_3x3(0), skip(0) + bconv_3x3(2)"
    )
    with pytest.raises(ValueError, match="lack the cell genes \\['reduce_1_1_op'"):
        hypermodel.genotype({k: v for k, v in values.items() if k != "reduce_1_1_op"})
    with pytest.raises(ValueError, match="normal_0_0_op holds 'group_bconv_3x3'"):
        hypermodel.genotype({**values, "normal_0_0_op": "group_bconv_3x3"})
    with pytest.raises(ValueError, match="input in 0..1"):
        hypermodel.genotype({**values, "normal_0_1_input": 2})


def test_every_genome_the_oracle_can_draw_is_a_valid_genotype():
    hypermodel = CellHyperModel(nodes=3)
    hp = _space(hypermodel)
    order = [h.name for h in hp.space]
    keys = set()
    for seed in range(50):
        rng = random.Random(seed)
        values = operators.random_values(hp, rng)  # GeneticOracle._random_values
        if seed % 2:  # and its children
            other = operators.random_values(hp, rng)
            values = operators.single_point(values, other, order, rng)
            values = operators.mutate(values, hp, rng, (1, 3))
        assert set(values) == set(order)
        genotype = hypermodel.genotype(values)
        assert Genotype.from_json(genotype.to_json()) == genotype
        assert all(op != "zero" for op, _ in genotype.normal + genotype.reduce)
        keys.add(str(hypermodel.architecture_key(values)))
    assert len(keys) == 50


@pytest.mark.parametrize("shape", [MNIST1D, MNIST])
def test_build_gives_a_compiled_net_of_larq_binary_convs(shape):
    keras.backend.clear_session()
    hypermodel = CellHyperModel(input_shape=shape, num_classes=7, seed=0)
    hp = _with(_space(hypermodel), _values(NORMAL, REDUCE))
    model = hypermodel.build(hp)
    assert model.output_shape == (None, 7)
    assert model.optimizer is not None
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    binary = [layer for layer in convs if layer.name != "stem"]
    assert all(isinstance(layer, lq.layers.QuantConv2D) for layer in binary)
    assert binary == models.binary_convolutions(model)
    # Per cell: 2 pointwise inputs + the conv ops. Cells 1 and 2 reduce, where
    # skip(0) runs at stride 2, a binary 1x1 conv: 2 + 2, then 2 + 3 twice.
    assert len(binary) == 4 + 5 + 5
    assert not isinstance(convs[0], lq.layers.QuantConv2D)  # the float stem


def test_same_seed_and_genotype_give_the_same_initial_weights():
    def weights(seed):
        keras.backend.clear_session()
        hypermodel = CellHyperModel(nodes=1, cells=3, seed=seed)
        values = _values(NORMAL[:2], REDUCE[:2])
        return hypermodel.build(_with(_space(hypermodel), values)).get_weights()

    first = weights(3)
    keras.utils.set_random_seed(99)  # the global state must not matter
    assert all(np.array_equal(a, b) for a, b in zip(first, weights(3), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, weights(4), strict=True))


@pytest.mark.parametrize(
    "ops, match",
    [
        (SEARCH_OPS + ("zero",), "ops .* with 'zero'.*Fix: drop 'zero'"),
        (("bconv_3x3", "bconv_7x7"), "Unknown UBNAS operation 'bconv_7x7'"),
        (("skip", "skip"), "repeat \\['skip'\\]"),
        (("bconv_3x3", "group_bconv_3x3"), "'group_bconv_3x3' in CellHyperModel"),
    ],
)
def test_bad_ops_are_refused_naming_the_value(ops, match):
    with pytest.raises(ValueError, match=match):
        CellHyperModel(ops=ops)


def test_bad_shapes_sizes_and_binarizers_are_refused():
    with pytest.raises(ValueError, match="input_shape=\\(784,\\)"):
        CellHyperModel(input_shape=(784,))
    with pytest.raises(ValueError, match="nodes=0; expected an integer >= 1"):
        CellHyperModel(nodes=0)
    with pytest.raises(ValueError):
        CellHyperModel(binarizer="no_such_binarizer")
    # Grouped convs are fine where LCE fuses them (32 channels per group).
    CellHyperModel(ops=("bconv_3x3", "group_bconv_3x3"), channels=64)


def test_a_tiny_genetic_search_completes_its_trials(tmp_path):
    keras.backend.clear_session()
    splits = data.load("mnist1d", max_samples=128, batch_size=64)
    hypermodel = CellHyperModel(
        input_shape=splits.input_shape,
        num_classes=10,
        nodes=1,
        cells=3,
        channels=8,
        epochs=1,
        steps_per_epoch=2,
        kill_below=None,
        seed=0,
    )
    tuner = GeneticSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=3,
        population_size=2,
        seed=0,
        directory=str(tmp_path),
        project_name="cells",
    )
    tuner.search(splits.train, validation_data=splits.validation, verbose=0)
    trials = tuner.oracle.trials.values()
    assert len(trials) == 3
    assert {trial.status for trial in trials} == {"COMPLETED"}
    assert all(0.0 <= trial.score <= 1.0 for trial in trials)
    best = tuner.get_best_hyperparameters()[0].values
    assert isinstance(hypermodel.genotype(best), Genotype)
    assert tuner.oracle.lineage[max(tuner.oracle.trials)]["origin"] == "child"


def test_the_search_job_searches_the_cell_space(tmp_path):
    import json

    from keras_bnn_af.searchers import run_search

    settings = {"space": "cell", "dataset": "mnist1d", "epochs": 1, "max_trials": 2}
    settings |= {"max_samples": 128, "batch_size": 64, "seed": 0}
    result = run_search(settings, tmp_path / "cell")
    assert result.completed == 2
    trials = json.loads((tmp_path / "cell" / "results.json").read_text())["trials"]
    assert all(t["architecture"].startswith("normal: ") for t in trials)
    assert (
        "| rank | architecture |" in (tmp_path / "cell" / "leaderboard.md").read_text()
    )
