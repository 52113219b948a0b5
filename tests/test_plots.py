import larq as lq
import numpy as np
import pytest

from keras_bnn_af import plot_binarizer
from keras_bnn_af.plots import binarizer_curves


def test_curves_of_ste_sign_match_its_definition():
    curves = binarizer_curves("ste_sign", x_range=(-2.0, 2.0), points=401)
    x = curves["x"]
    np.testing.assert_array_equal(curves["function"], x)
    np.testing.assert_array_equal(curves["output"], np.where(x >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(curves["gradient"], (np.abs(x) <= 1.0) * 1.0)


def test_trained_instance_is_drawn_with_its_own_parameters():
    quantizer = lq.quantizers.SteSign(clip_value=0.5)
    quantizer(np.zeros((1, 3), np.float32))  # built, as inside a layer
    curves = binarizer_curves(quantizer, x_range=(-1.0, 1.0), points=5)
    np.testing.assert_array_equal(curves["gradient"], [0.0, 1.0, 1.0, 1.0, 0.0])


def test_plot_binarizer_writes_a_png(tmp_path):
    path = plot_binarizer("approx_sign", tmp_path / "approx.png", title="approx")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_unknown_binarizer_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown binarizer 'sgn'"):
        plot_binarizer("sgn", tmp_path / "x.png")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rsign", lambda x: x),  # alpha starts at 0
        ("self_binarizing", np.tanh),  # sharpness starts at 1
        ("gaaf:sin_x", np.sin),
        ("dithered_sign:design_2x2", lambda x: x - 0.631),  # T[0, 0, 0]
    ],
)
def test_curves_draw_each_binarizers_real_valued_function(spec, expected):
    curves = binarizer_curves(spec, x_range=(-2.0, 2.0), points=81)
    np.testing.assert_allclose(curves["function"], expected(curves["x"]), atol=1e-6)
    binarized = np.where(curves["function"] >= 0, 1.0, -1.0)
    np.testing.assert_array_equal(curves["output"], binarized)
