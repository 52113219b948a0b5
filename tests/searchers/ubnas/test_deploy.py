"""A derived net trains, exports verified to LCE, and reports its costs."""

import json

from keras_bnn_af.latency import profile_names
from keras_bnn_af.searchers.ubnas.config import NasConfig
from keras_bnn_af.searchers.ubnas.deploy import train_derived
from keras_bnn_af.searchers.ubnas.genotype import Genotype


def test_train_derived_reports_size_accuracy_and_latency(tmp_path):
    genotype = Genotype(
        1,
        [("bconv_3x3", 0), ("max_pool_3x3", 1)],
        [("dil_bconv_3x3", 0), ("skip", 1)],
    )
    config = NasConfig(
        dataset="mnist1d", nodes=1, channels=4, batch_size=32, max_samples=64
    )
    report = train_derived(genotype, config, tmp_path / "derived", epochs=1)
    assert report["verified"] and report["float_convs"] == []
    # 2 inputs per cell; the normal cell: bconv_3x3; two reduction cells:
    # dil_bconv_3x3 and skip at stride 2 (a binary 1x1 conv)
    assert report["op_counts"]["LceBconv2d"] == 3 * 2 + 1 + 2 * 2
    assert report["op_counts"]["CONV_2D"] == 1  # the float stem
    assert 0.9 < report["binary_mac_share"] < 1
    assert 0 <= report["test_accuracy"] <= 1 and report["epochs"] == 1
    assert report["host_latency_ms"] > 0
    assert sorted(report["predicted_ms"]) == profile_names()
    assert all(ms > 0 for ms in report["predicted_ms"].values())
    saved = json.loads((tmp_path / "derived" / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert Genotype.from_json(saved["genotype"]) == genotype
    model = tmp_path / "derived" / "model.tflite"
    assert model.stat().st_size == report["size_bytes"]
