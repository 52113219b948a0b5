"""Verification: samples, the interpreter run, rounding ties and mismatches."""

import numpy as np
import pytest

from keras_bnn_af import models
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters import VerificationError, export_lce, verify
from keras_bnn_af.testing import binary_block_net

FAST = {"num_samples": 64, "float32_twin_size": False}


def test_a_rounding_tie_is_reported_and_tolerated(tmp_path):
    # With these weights, sample 231 of the default inputs has a binarizer input
    # of 8.9e-9 (activations of order 1): Keras's fused graph and LCE (which
    # folds the BatchNorm into the threshold) binarize it differently, and the
    # logits move by 0.13. Every other sample agrees to 1e-5.
    keras.utils.set_random_seed(35)
    model = binary_block_net("ste_sign")
    report = export_lce(model, tmp_path / "m.tflite", float32_twin_size=False)
    assert report.max_abs_diff > 0.1
    assert report.rounding_ties == [231] and report.mismatches == 0
    assert report.verified
    (tied,) = report.tied_samples
    assert tied.explained and tied.max_abs_diff < 1e-4
    assert [(t.layer, t.index) for t in tied.flipped] == [("quant_conv2d", (8, 11, 10))]
    assert tied.binarized == ((-1.0, 1.0),) and tied.flipped[0].ulps < 1


def test_the_tie_share_is_a_fifth_of_the_samples_rounded_down():
    assert verify.MAX_TIE_SHARE == 0.2
    assert [verify.allowed_ties(n) for n in (4, 5, 8, 256)] == [0, 1, 1, 51]


def test_a_real_mismatch_raises_and_writes_nothing(tmp_path, monkeypatch):
    real = verify._run_interpreter

    def corrupted(flatbuffer, inputs, *args, **kwargs):
        outputs, interpreter = real(flatbuffer, inputs, *args, **kwargs)
        return outputs + 0.01, interpreter

    monkeypatch.setattr(verify, "_run_interpreter", corrupted)
    model = binary_block_net("ste_sign", filters=(32,))
    path = tmp_path / "m.tflite"
    fast = {**FAST, "num_samples": 16}
    with pytest.raises(VerificationError, match="on_mismatch='warn'") as raised:
        export_lce(model, path, **fast)
    assert "Nothing was written" in str(raised.value)
    report = raised.value.report
    assert not path.exists() and report.mismatches == 16
    assert report.rounding_ties == [] and report.top1_agreement == 1.0
    with pytest.warns(UserWarning, match="does not match"):
        report = export_lce(model, path, on_mismatch="warn", **fast)
    assert path.exists() and not report.verified
    assert "Written anyway" in report.warnings[0]


def test_verification_samples_from_arrays_datasets_and_names():
    model = models.build("binarynet")
    inputs, labels, source = verify.verification_samples(model, "mnist", num_samples=5)
    assert inputs.shape == (5, 28, 28, 1) and labels.shape == (5,)
    assert inputs.min() >= -1.0 and inputs.max() <= 1.0 and inputs.dtype == np.float32
    assert source == "mnist test[:5]"
    default, labels, _ = verify.verification_samples(model, None, num_samples=3)
    assert default.shape == (3, 28, 28, 1) and labels is None
    np.testing.assert_array_equal(
        default, verify.verification_samples(model, None, num_samples=3)[0]
    )
    x = np.random.default_rng(0).normal(size=(10, 28, 28, 1)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(10))).batch(4)
    for samples in [x, dataset, dataset.map(lambda x, y: x)]:
        inputs, _, _ = verify.verification_samples(model, samples)
        np.testing.assert_array_equal(inputs, x)


def test_refuses_samples_of_the_wrong_shape(tmp_path):
    model = models.build("binarynet")
    samples = np.zeros((4, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"\(4, 28, 28\).*\(N, 28, 28, 1\)"):
        export_lce(model, tmp_path / "m.tflite", verify_with=samples)
    with pytest.raises(ValueError, match="Unknown dataset"):
        export_lce(model, tmp_path / "m.tflite", verify_with="mnist2")
    empty = tf.data.Dataset.from_tensor_slices(samples[:0, ..., None]).batch(2)
    with pytest.raises(ValueError, match="empty tf.data.Dataset"):
        verify.verification_samples(model, empty)
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        verify.verification_samples(model, None, num_samples=0)


def test_grouped_binary_convs_are_verified_with_the_reference_kernels(
    binary_conv, tmp_path
):
    # LCE's optimized x86 kernels refuse grouped binary convs at allocation.
    inputs = keras.Input((6, 6, 64))
    model = keras.Model(inputs, binary_conv("grouped", groups=2)(inputs))
    report = export_lce(model, tmp_path / "g.tflite", **{**FAST, "num_samples": 8})
    assert report.op_counts["LceBconv2d"] == 1 and report.float_convs == []
    assert report.interpreter == "use_reference_bconv" and report.verified
