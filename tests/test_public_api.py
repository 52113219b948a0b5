from importlib import metadata

import keras_bnn_af

PUBLIC = {
    "DitheredSign",
    "GAAF",
    "RSign",
    "SelfBinarizing",
    "__version__",
    "af",
    "binarizer_factory",
    "build_model",
    "callbacks",
    "data",
    "load_dataset",
    "macs",
    "models",
    "plot_binarizer",
    "quantizers",
    "runs",
    "training",
}


def test_public_names_are_the_reviewed_list_and_resolve():
    assert set(keras_bnn_af.__all__) == PUBLIC
    for name in keras_bnn_af.__all__:
        assert getattr(keras_bnn_af, name) is not None


def test_version_comes_from_package_metadata():
    assert keras_bnn_af.__version__ == metadata.version("keras-bnn-af")
