"""ArchHyperModel: the architecture space builds, converts, folds, seeds and trains."""

import random

import keras_tuner as kt
import larq as lq
import numpy as np
import pytest

from keras_bnn_af import data, macs, models
from keras_bnn_af._keras import keras
from keras_bnn_af.converters import fold_thresholds
from keras_bnn_af.converters.ops import op_counts
from keras_bnn_af.latency import corpus
from keras_bnn_af.searchers import GeneticOracle, operators
from keras_bnn_af.searchers.arch_search import (
    BINARIZERS,
    FOLDABLE,
    MAX_BLOCKS,
    ArchHyperModel,
)

MNIST1D, MNIST = (40, 1), (28, 28, 1)


def _space(hypermodel) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp


def _values(hypermodel, blocks, **genes) -> dict:
    """The default genome with `blocks` = `[(width, kernel, binarizer, pool)]`."""
    values = dict(_space(hypermodel).values, blocks=len(blocks), **genes)
    for i, (width, kernel, binarizer, pool) in enumerate(blocks, start=1):
        values.update(
            {
                f"width_{i}": width,
                f"kernel_{i}": kernel,
                f"binarizer_{i}": binarizer,
                f"pool_{i}": pool,
            }
        )
    return values


def _with(hp: kt.HyperParameters, values: dict) -> kt.HyperParameters:
    trial_hp = hp.copy()
    trial_hp.values = dict(values)
    return trial_hp


def _quant_convs(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, lq.layers.QuantConv2D)]


def test_space_has_a_fixed_length_genome_of_documented_values():
    hp = _space(ArchHyperModel())
    assert [h.name for h in hp.space][:2] == ["blocks", "stem_width"]
    assert len(hp.space) == 2 + 4 * MAX_BLOCKS
    assert not any(h.conditions for h in hp.space)  # depth is not a scope
    assert (hp.get("blocks"), hp.space[0].min_value, hp.space[0].max_value) == (3, 2, 5)
    assert hp.space[2].name == "width_1" and hp.space[2].values == [16, 32, 64, 128]
    assert hp.space[3].name == "kernel_1" and hp.space[3].values == [1, 3, 5]
    assert hp.space[4].values == list(BINARIZERS)
    # The latency profiles are fitted on exactly these binarizers.
    assert set(BINARIZERS) == set(corpus.BINARIZERS)
    assert FOLDABLE == {"ste_sign", "gaaf:x_plus_sin_x", "rsign"}
    with pytest.raises(ValueError, match="input_shape=\\(784,\\)"):
        ArchHyperModel(input_shape=(784,))


def test_formula_ignores_extra_blocks_and_pools_only_where_the_map_allows():
    genome = [(32, 3, "ste_sign", True), (64, 5, "gaaf:sin_x", True)] + [
        (16, 1, "rsign", True)
    ] * 3
    wide, long = ArchHyperModel(input_shape=MNIST), ArchHyperModel(input_shape=MNIST1D)
    # 28 -> 14 -> 7 -> 3 -> 1: a fifth pool would leave nothing; 40 halves 5 times.
    assert [b.pool for b in wide.blocks_of(_values(wide, genome))] == [True] * 4 + [
        False
    ]
    assert all(b.pool for b in long.blocks_of(_values(long, genome)))
    two = _values(wide, genome[:2], width_5=128, binarizer_5="gaaf:sin_x")
    assert wide.formula(two) == "stem32 | 32-k3-ste_sign+pool | 64-k5-sin_x+pool"
    assert wide.architecture_key(two) == wide.architecture_key(
        {**two, "width_5": 16, "kernel_4": 1}
    )
    model = wide.build_model(_values(wide, genome))
    assert sum(isinstance(x, keras.layers.MaxPool2D) for x in model.layers) == 4


@pytest.mark.parametrize(
    "shape, blocks, sins",
    [
        # x + sin(x) is monotone (folds away), sin(x) is not: one SIN is left.
        (
            MNIST1D,
            [(16, 3, "gaaf:x_plus_sin_x", True), (32, 5, "gaaf:sin_x", False)]
            + [(16, 1, "rsign", True)],
            (2, 1),
        ),
        # Only foldable binarizers: no float SIN survives folding.
        (
            MNIST,
            [(32, 3, "gaaf:x_plus_sin_x", True), (16, 1, "ste_sign", True)],
            (1, 0),
        ),
    ],
)
def test_every_binary_conv_is_one_lce_bconv_and_folding_keeps_only_sin_x(
    shape, blocks, sins
):
    import larq_compute_engine as lce

    hypermodel = ArchHyperModel(input_shape=shape, num_classes=7)
    values = _values(hypermodel, blocks, width_5=128, kernel_5=5)  # ignored genes
    model = hypermodel.build_model(values)
    assert model.output_shape == (None, 7)
    binary = models.binary_convolutions(model)
    assert len(_quant_convs(model)) == len(binary) == len(blocks)
    expected_kernels = [(k, 1) if len(shape) == 2 else (k, k) for _, k, _, _ in blocks]
    assert [conv.kernel_size for conv in binary] == expected_kernels
    assert [conv.filters for conv in binary] == [width for width, *_ in blocks]
    assert hypermodel.binary_macs(values) == macs.count(macs.layer_macs(model), 1)

    ops = op_counts(lce.convert_keras_model(model))
    assert ops["LceBconv2d"] == len(blocks) and ops["CONV_2D"] == 1
    assert ops["SIN"] == sins[0]
    folded, folds = fold_thresholds(model)
    folds_expected = [b in FOLDABLE for *_, b, _ in blocks if b != "ste_sign"]
    assert [fold.folded for fold in folds] == folds_expected  # ste_sign: no fold
    folded_ops = op_counts(lce.convert_keras_model(folded))
    assert folded_ops["LceBconv2d"] == len(blocks)
    assert folded_ops["SIN"] == sins[1]


@pytest.mark.parametrize("shape", [MNIST1D, MNIST])
def test_genomes_the_genetic_operators_make_build(shape):
    hypermodel = ArchHyperModel(input_shape=shape, seed=0)
    hp = _space(hypermodel)
    for seed in range(10):
        rng = random.Random(seed)
        values = operators.random_values(hp, rng)  # GeneticOracle._random_values
        if seed % 2:  # and what its children look like
            other = operators.random_values(hp, rng)
            order = [h.name for h in hp.space]
            values = operators.single_point(values, other, order, rng)
            values = operators.mutate(values, hp, rng, (1, 3))
        assert set(values) == {h.name for h in hp.space}
        keras.backend.clear_session()
        model = hypermodel.build(_with(hp, values))
        assert model.output_shape == (None, 10)
        assert len(models.binary_convolutions(model)) == values["blocks"]
        assert model.optimizer is not None
        formula = hypermodel.formula(values)
        assert formula.count("|") == values["blocks"]


def test_genetic_oracle_proposes_complete_genomes(tmp_path):
    hypermodel = ArchHyperModel()
    oracle = GeneticOracle(
        objective=kt.Objective("score", "max"),
        max_trials=8,
        population_size=4,
        seed=1,
        hyperparameters=_space(hypermodel),
    )
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), "arch")
    names = {h.name for h in oracle.hyperparameters.space}
    for _ in range(8):
        trial = oracle.create_trial("tuner0")
        assert trial.status == "RUNNING"
        values = dict(trial.hyperparameters.values)
        assert set(values) == names
        score = -hypermodel.binary_macs(values) / 1e6  # a stand-in objective
        oracle.update_trial(trial.trial_id, {"score": score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


def test_same_seed_and_architecture_give_the_same_initial_weights():
    def weights(seed, values):
        keras.backend.clear_session()
        hypermodel = ArchHyperModel(input_shape=MNIST1D, seed=seed)
        return hypermodel.build(_with(_space(hypermodel), values)).get_weights()

    hypermodel = ArchHyperModel(input_shape=MNIST1D)
    values = _values(hypermodel, [(32, 3, "rsign", True), (16, 5, "gaaf:sin_x", False)])
    first = weights(3, values)
    keras.utils.set_random_seed(99)  # the global state must not matter
    again = weights(3, values)
    assert len(first) == len(again)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    # A gene of an ignored block changes nothing; another seed changes weights.
    ignored = weights(3, {**values, "width_4": 128, "binarizer_5": "rsign"})
    assert all(np.array_equal(a, b) for a, b in zip(first, ignored, strict=True))
    other = weights(4, values)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_a_tiny_training_run_completes_and_divergence_fails_the_trial():
    splits = data.load("mnist1d", max_samples=64, batch_size=32)
    hypermodel = ArchHyperModel(
        input_shape=splits.input_shape, epochs=1, steps_per_epoch=2, seed=0
    )
    hp = _space(hypermodel)
    model = hypermodel.build(hp)
    history = hypermodel.fit(hp, model, splits.train, validation_data=splits.validation)
    assert len(history.history["loss"]) == 1
    assert 0.0 <= history.history["val_accuracy"][0] <= 1.0

    diverged = keras.Sequential(  # a model whose loss is NaN from the first step
        [keras.layers.Dense(10, kernel_initializer=keras.initializers.Constant(np.inf))]
    )
    diverged.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int64)
    with pytest.raises(kt.errors.FailedTrialError, match="stem32 \\| 64-k3"):
        hypermodel.fit(hp, diverged, x, y, validation_data=(x, y))
