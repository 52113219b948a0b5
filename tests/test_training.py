import json

import larq as lq
import numpy as np
import pytest

from keras_bnn_af import training


class NeverFlippingBop(lq.optimizers.Bop):
    """Bop with a flip threshold no gradient average reaches: the control."""

    def __init__(self, threshold=1e9, **kwargs):
        super().__init__(threshold=threshold, **kwargs)


def train_recording_binary_kernels(config, out_dir=None, bop=lq.optimizers.Bop):
    """Trains `config` with `bop` as Bop; returns the result and the number of
    binary-kernel signs that training flipped.

    The binary kernels (the variables Bop trains) are read right after the model
    is built, before any step, and compared with the trained ones.
    """
    initial = []
    build = training.models.build

    def recording_build(*args, **kwargs):
        model = build(*args, **kwargs)
        initial.extend(binary_kernels(model))
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.models, "build", recording_build)
        patch.setattr(lq.optimizers, "Bop", bop)
        result = training.train(config, out_dir, verbose=0)
    trained = binary_kernels(result.model)
    assert len(trained) == len(initial) == 5  # binarynet's five binary kernels
    flips = sum(
        int(np.count_nonzero(np.sign(before) != np.sign(after)))
        for before, after in zip(initial, trained, strict=True)
    )
    return result, flips


def binary_kernels(model) -> list[np.ndarray]:
    return [
        variable.numpy()
        for variable in model.trainable_variables
        if lq.optimizers.Bop.is_binary_variable(variable)
    ]


def test_bop_flips_binary_weights_and_learns_and_saves(tmp_path):
    config = training.TrainConfig(
        epochs=1, batch_size=32, max_samples=256, optimizer="bop", seed=1
    )
    bop, flips = train_recording_binary_kernels(config, tmp_path / "bop")
    # The control: the same seed and data, a Bop that flips nothing (Adam still
    # trains the BatchNorms).
    frozen, frozen_flips = train_recording_binary_kernels(config, bop=NeverFlippingBop)
    assert flips > 0 and frozen_flips == 0
    # Measured over seeds 0-4 (256 test digits): Bop 0.445-0.535, the control
    # 0.074-0.109 (chance is 0.1), a difference of 0.348-0.426.
    accuracies = [r.metrics["test_accuracy"] for r in (bop, frozen)]
    assert accuracies[0] - accuracies[1] > 0.2, accuracies
    saved = json.loads((tmp_path / "bop" / "metrics.json").read_text())
    assert saved["config"]["optimizer"] == "bop"


def test_mnist1d_with_the_1d_model_learns_something():
    config = training.TrainConfig(
        dataset="mnist1d", model="conv1d", epochs=3, learning_rate=1e-2, seed=0
    )
    result = training.train(config, verbose=0)
    assert result.metrics["num_examples"]["test"] == 1000
    assert result.metrics["test_accuracy"] > 0.3  # chance is 0.1


def test_same_seed_gives_the_same_run():
    config = training.TrainConfig(epochs=1, batch_size=32, max_samples=128, seed=5)
    first = training.train(config, verbose=0).metrics
    second = training.train(config, verbose=0).metrics
    assert first["history"] == second["history"]


def test_binarizer_config_dict_is_used_and_recorded():
    spec = {"class_name": "SteSign", "config": {"clip_value": 1.25}}
    config = training.TrainConfig(epochs=1, max_samples=64, binarizer=spec)
    result = training.train(config, verbose=0)
    conv = result.model.get_layer("conv_1")
    assert conv.input_quantizer.clip_value == 1.25
    assert result.metrics["config"]["binarizer"] == spec


def test_existing_output_folder_is_refused_before_training(tmp_path):
    (tmp_path / "model.h5").write_text("precious")
    with pytest.raises(training.OutputExistsError, match="already exists"):
        training.train(training.TrainConfig(epochs=1, max_samples=64), tmp_path)
    assert (tmp_path / "model.h5").read_text() == "precious"


def test_unset_settings_come_from_the_dataset_recipe():
    config = training.TrainConfig(dataset="mnist1d")
    assert (config.model, config.epochs, config.batch_size, config.learning_rate) == (
        "conv1d",
        10,
        64,
        1e-2,
    )
    assert config.from_recipe["fields"] == list(training.RECIPE_FIELDS)
    assert "docs/binarizers.md" in config.from_recipe["source"]
    mine = training.TrainConfig(dataset="mnist1d", learning_rate=1e-3, epochs=2)
    assert mine.learning_rate == 1e-3 and mine.epochs == 2 and mine.model == "conv1d"
    assert mine.from_recipe["fields"] == ["model", "batch_size"]
    mnist = training.TrainConfig()
    assert (mnist.model, mnist.epochs, mnist.learning_rate) == ("binarynet", 3, 1e-3)


def test_another_model_gets_the_generic_settings():
    config = training.TrainConfig(dataset="mnist1d", model="binarynet")
    assert (config.epochs, config.learning_rate) == (3, 1e-3)
    assert "generic" in config.from_recipe["source"]


def test_the_run_records_the_recipe(tmp_path):
    config = training.TrainConfig(epochs=1, max_samples=64, seed=2)
    training.train(config, tmp_path / "run", verbose=0)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["config"]["learning_rate"] == 1e-3
    assert saved["recipe"]["fields"] == ["model", "batch_size", "learning_rate"]
    assert training.TrainConfig(**saved["config"]) == config
