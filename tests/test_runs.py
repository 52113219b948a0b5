"""Run folders: written by training, read back by the export (`keras_bnn_af.runs`)."""

import json

import pytest

from keras_bnn_af import converters, runs, training
from keras_bnn_af._keras import keras


def test_the_run_names_are_shared_with_training_and_the_converters():
    assert training.MODEL_FILE is runs.MODEL_FILE == "model.h5"
    assert training.METRICS_FILE is runs.METRICS_FILE == "metrics.json"
    assert training.CURVE_FILE is runs.CURVE_FILE == "training_curve.png"
    assert training.OutputExistsError is runs.OutputExistsError
    assert training.check_output_dir is runs.check_output_dir
    assert converters.load_trained_model is runs.load_trained_model
    assert converters.run_dataset is runs.run_dataset


def test_a_run_folder_loads_back(run_folder):
    assert {p.name for p in run_folder.iterdir()} >= {
        runs.MODEL_FILE,
        runs.METRICS_FILE,
        runs.CURVE_FILE,
    }
    model = runs.load_trained_model(run_folder)
    assert isinstance(model, keras.Model) and model.name == "binarynet"
    from_file = runs.load_trained_model(run_folder / runs.MODEL_FILE)
    assert [w.shape for w in from_file.weights] == [w.shape for w in model.weights]


def test_run_dataset_reads_the_run_config(run_folder, tmp_path):
    assert runs.run_dataset(run_folder) == "mnist"
    assert runs.run_dataset(run_folder / "model.h5") is None
    assert runs.run_dataset(tmp_path) is None
    (tmp_path / runs.METRICS_FILE).write_text(json.dumps({"config": {}}))
    assert runs.run_dataset(tmp_path) is None
    (tmp_path / runs.METRICS_FILE).write_text('{"config": {"dataset": "mnist2"}}')
    assert runs.run_dataset(tmp_path) is None


def test_load_trained_model_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        runs.load_trained_model(tmp_path / "missing")
    with pytest.raises(ValueError, match="neither model.h5 nor saved_model.pb"):
        runs.load_trained_model(tmp_path)
    (tmp_path / "junk.h5").write_text("not a model")
    with pytest.raises(ValueError, match="Cannot load"):
        runs.load_trained_model(tmp_path / "junk.h5")


def test_check_output_dir_refuses_an_existing_folder_unless_overwrite(tmp_path):
    (tmp_path / "model.h5").write_text("precious")
    with pytest.raises(runs.OutputExistsError, match="already exists"):
        runs.check_output_dir(tmp_path, overwrite=False)
    assert runs.check_output_dir(tmp_path, overwrite=True) == tmp_path
    with pytest.raises(runs.OutputExistsError, match="is a file"):
        runs.check_output_dir(tmp_path / "model.h5", overwrite=True)
    assert (tmp_path / "model.h5").read_text() == "precious"
