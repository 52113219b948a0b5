"""Train a searched cell's network, export it to LCE and report what it costs.

```python
report = train_derived(genotype, NasConfig(dataset="mnist"), "nas/mnist/derived",
                       epochs=5)
report["test_accuracy"], report["host_latency_ms"], report["predicted_ms"]["rpi4b"]
```

The derived net (`derived.build_derived`, the search's cells and channels)
trains with Adam on the training split (a 10 % validation split held out, as
`keras-bnn-af train` does), is evaluated once on the test split, and is
exported with `export_lce` (verified against Keras on test digits, threshold
folding on). The report: parameters, binary MAC share, `.tflite` size, test
accuracy, host latency (LCE's interpreter on this x86 host, median of
interleaved rounds: it ranks models on this host only) and the latency
model's prediction per shipped device profile (1 thread).
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_bnn_af import data
from keras_bnn_af._files import write_atomic
from keras_bnn_af._keras import keras
from keras_bnn_af.searchers.ubnas.config import NasConfig
from keras_bnn_af.searchers.ubnas.derived import build_derived
from keras_bnn_af.searchers.ubnas.genotype import Genotype

__all__ = ["deploy_report", "train_derived"]


def train_derived(
    genotype: Genotype,
    config: NasConfig,
    out_dir,
    *,
    epochs: int = 5,
    channels: int | None = None,
    model: keras.Model | None = None,
    verbose: int = 0,
) -> dict:
    """Trains, exports and reports the net of `genotype` into `out_dir`.

    # Arguments
        channels: the derived net's initial channels (default: the search's).
        model: a model to train instead of the genotype's (e.g. a
            hand-designed reference of equal binary MACs), reported alike.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    splits = data.load(
        config.dataset,
        batch_size=config.batch_size,
        max_samples=config.max_samples,
        seed=config.seed,
    )
    if model is None:
        model = build_derived(
            genotype,
            input_shape=splits.input_shape,
            num_classes=splits.num_classes,
            cells=config.cells,
            channels=channels or config.channels,
            binarizer=config.binarizer,
        )
    model.compile(
        keras.optimizers.Adam(config.learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    fit = model.fit(
        splits.train, validation_data=splits.validation, epochs=epochs, verbose=verbose
    )
    _, test_accuracy = model.evaluate(splits.test, verbose=0)
    report = deploy_report(model, out / "model.tflite", config.dataset)
    report.update(
        epochs=epochs,
        val_accuracy=float(fit.history["val_accuracy"][-1]),
        test_accuracy=float(test_accuracy),
        genotype=genotype.to_json() if genotype else None,
    )
    write_atomic(out / "report.json", json.dumps(report, indent=1) + "\n")
    return report


def deploy_report(model: keras.Model, path: Path, dataset: str) -> dict:
    """Exports `model` to `path` (verified) and measures and predicts its cost."""
    from keras_bnn_af.benchmarks import median_latencies
    from keras_bnn_af.converters import export_lce
    from keras_bnn_af.latency import LatencyModel, profile_names

    export = export_lce(
        model,
        path,
        verify_with=dataset,
        num_samples=128,
        overwrite=True,
        latency=median_latencies,
    ).to_json()
    graph = Path(path).read_bytes()
    return {
        "params": int(model.count_params()),
        "binary_mac_share": export["binary_mac_share"],
        "size_bytes": export["size_bytes"],
        "op_counts": export["op_counts"],
        "float_convs": export["float_convs"],
        "host_latency_ms": export["latency_ms"],
        "predicted_ms": {
            name: LatencyModel.load(name).predict(graph) for name in profile_names()
        },
        "verified": export["verified"],
    }
