import json

import pytest

from keras_bnn_af import training


def test_bop_trains_binary_weights_and_saves(tmp_path):
    config = training.TrainConfig(
        epochs=1, batch_size=32, max_samples=128, optimizer="bop", seed=1
    )
    result = training.train(config, tmp_path / "bop", verbose=0)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
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
