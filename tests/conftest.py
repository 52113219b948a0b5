import os
import socket
import warnings

import pytest

from keras_bnn_af._keras import keras
from tests.sshd_server import sshd  # noqa: F401 (the session fixture, shared)


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """A per-session cache, so tests never read or fill the user's cache."""
    path = tmp_path_factory.mktemp("keras-bnn-af-cache")
    previous = os.environ.get("KERAS_BNN_AF_CACHE_DIR")
    os.environ["KERAS_BNN_AF_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        del os.environ["KERAS_BNN_AF_CACHE_DIR"]
    else:
        os.environ["KERAS_BNN_AF_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def seeded():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


@pytest.fixture
def no_network(monkeypatch):
    """Fails the test if anything opens a non-loopback connection."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"unexpected network connection to {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory):
    """A `keras-bnn-af train` run folder: binarynet, 1 epoch on 64 MNIST digits."""
    from keras_bnn_af import training

    out = tmp_path_factory.mktemp("runs") / "mnist"
    config = training.TrainConfig(epochs=1, max_samples=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training.train(config, out, verbose=0)
    return out
