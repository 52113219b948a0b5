"""The search loop: first-order alternating updates, warm-up, early stop, resume.

```python
outcome = run_nas(NasConfig(dataset="mnist", epochs=10), "nas/mnist")
outcome.genotype            # also in nas/mnist/genotype.json
```

Each step (first-order DARTS) takes one batch of the **training** split and
updates the weights on it; after `warmup` epochs it first takes one batch of
the held-out **validation** split and updates α and β on it. The training
pool is split in half (DARTS); the test split is never read. Early stopping:
after the warm-up, the search ends once the derived genotype has stayed the
same for `patience` epochs; α keeps sharpening after that, but the cell it
derives, the only result a search hands on, no longer changes (the epochs
saved are recorded as `epochs_saved`).

`out_dir` gets `config.json`, `history.jsonl` (one record per epoch,
appended; on resume an epoch may appear twice, the last record counts),
`genotype.json` (the latest derived genotype) and `checkpoints/` (weights, α,
β, both optimizers, the epoch). A killed search resumes from its last
completed epoch with `resume=True`.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_bnn_af import data
from keras_bnn_af._files import write_atomic
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.searchers.ubnas.config import NasConfig
from keras_bnn_af.searchers.ubnas.genotype import Genotype, derive
from keras_bnn_af.searchers.ubnas.supernet import Supernet

__all__ = ["NasOutcome", "read_history", "run_nas"]


@dataclass(frozen=True)
class NasOutcome:
    """What a search found and what it cost."""

    genotype: Genotype
    epochs_run: int
    stopped_early: bool
    epochs_saved: int
    cpu_seconds: float
    out_dir: Path


def run_nas(
    config: NasConfig, out_dir, *, resume: bool = False, log=print
) -> NasOutcome:
    """Runs (or resumes) a search into `out_dir` (see the module docstring)."""
    out = Path(out_dir)
    config = _check_out_dir(config, out, resume)
    splits = _load(config, config.seed)
    keras.utils.set_random_seed(config.seed)
    net = Supernet.for_search(config, splits.input_shape, splits.num_classes)
    trainer = _Trainer(net, config)
    start = trainer.restore(out / "checkpoints") if resume else 0
    history = read_history(out) if resume else []
    history = [record for record in history if record["epoch"] < start]
    stopped = bool(history) and _stable(history, config)
    if start:
        log(
            f"{out} stopped early after epoch {start}"
            if stopped
            else f"resuming {out} at epoch {start + 1} of {config.epochs}"
        )
    for epoch in range(start, start if stopped else config.epochs):
        epoch_splits = splits if epoch == 0 else _load(config, config.seed + epoch)
        record = trainer.epoch(epoch, epoch_splits)
        history.append(record)
        _append(out / "history.jsonl", record)
        write_atomic(out / "genotype.json", json.dumps(record["genotype"]) + "\n")
        trainer.save(out / "checkpoints", epoch + 1)
        log(_progress(record, config))
        if _stable(history, config):
            log(
                f"early stop: genotype unchanged for {config.patience} epochs "
                f"after the warm-up; {config.epochs - epoch - 1} epochs saved"
            )
            break
    last = history[-1]
    return NasOutcome(
        genotype=Genotype.from_json(last["genotype"]),
        epochs_run=len(history),
        stopped_early=len(history) < config.epochs,
        epochs_saved=config.epochs - len(history),
        cpu_seconds=sum(record["cpu_seconds"] for record in history),
        out_dir=out,
    )


def read_history(out_dir) -> list[dict]:
    """The per-epoch records of `history.jsonl`, the last one of each epoch."""
    path = Path(out_dir) / "history.jsonl"
    if not path.exists():
        return []
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["epoch"]] = record
    return [records[epoch] for epoch in sorted(records)]


def _stable(history: list[dict], config: NasConfig) -> bool:
    """True once the genotype has not changed for `patience` searched epochs."""
    if not config.patience:
        return False
    searched = [r for r in history if r["epoch"] >= config.warmup]
    if len(searched) <= config.patience:
        return False
    last = [Genotype.from_json(r["genotype"]) for r in searched[-config.patience - 1 :]]
    return all(genotype == last[0] for genotype in last)


class _Trainer:
    """The supernet, its two optimizers and one epoch of alternating steps."""

    def __init__(self, net: Supernet, config: NasConfig):
        self.net, self.config = net, config
        self.loss = keras.losses.SparseCategoricalCrossentropy()
        self.weight_optimizer = keras.optimizers.Adam(
            config.learning_rate, global_clipnorm=5.0
        )
        self.arch_optimizer = keras.optimizers.Adam(
            config.arch_learning_rate,
            beta_1=0.5,
            beta_2=0.999,
            weight_decay=config.arch_weight_decay,
        )
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            net=net,
            weight_optimizer=self.weight_optimizer,
            arch_optimizer=self.arch_optimizer,
            epochs_done=self.epochs_done,
        )

    @tf.function(reduce_retracing=True)
    def weight_step(self, x, y):
        """One update of the weights on a training batch; α and β untouched."""
        return self._step(x, y, self.net.weight_variables, self.weight_optimizer)

    @tf.function(reduce_retracing=True)
    def arch_step(self, x, y):
        """One update of α and β on a validation batch; weights untouched."""
        return self._step(x, y, self.net.architecture_variables, self.arch_optimizer)

    def _step(self, x, y, variables, optimizer):
        with tf.GradientTape() as tape:
            probabilities = self.net(x, training=True)
            loss = self.loss(y, probabilities)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        correct = tf.equal(
            tf.argmax(probabilities, -1), tf.cast(tf.reshape(y, [-1]), tf.int64)
        )
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32))

    def epoch(self, epoch: int, splits) -> dict:
        searching = epoch >= self.config.warmup
        wall, cpu = time.perf_counter(), time.process_time()
        losses, accuracies = [], []
        validation = splits.validation.repeat()
        for (x, y), (x_val, y_val) in zip(splits.train, validation, strict=False):
            if searching:
                self.arch_step(x_val, y_val)
            loss, accuracy = self.weight_step(x, y)
            losses.append(float(loss))
            accuracies.append(float(accuracy))
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "epoch": epoch,
            "phase": "search" if searching else "warm-up",
            "train_loss": float(np.mean(losses)),
            "train_accuracy": float(np.mean(accuracies)),
            "val_accuracy": self._accuracy(splits.validation),
            "steps": len(losses),
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu_seconds, 3),
            "step_ms": round(1000 * seconds / max(len(losses), 1), 2),
            "peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            **self.architecture(),
        }

    def _accuracy(self, dataset) -> float:
        correct = total = 0
        for x, y in dataset:
            predicted = np.argmax(self.net(x, training=False), -1)
            correct += int(np.sum(predicted == np.reshape(y, [-1])))
            total += len(predicted)
        return correct / max(total, 1)

    def architecture(self) -> dict:
        """α, β (as softmax weights) and the genotype they derive."""
        alphas = {kind: v.numpy() for kind, v in self.net.alphas.items()}
        betas = {kind: v.numpy() for kind, v in self.net.betas.items()}
        genotype = derive(
            alphas,
            betas,
            self.config.ops,
            self.config.nodes,
            self.config.max_parameter_free,
        )
        return {
            "alphas": {
                k: tf.nn.softmax(a).numpy().round(5).tolist() for k, a in alphas.items()
            },
            "betas": {k: b.round(5).tolist() for k, b in betas.items()},
            "genotype": genotype.to_json(),
        }

    def save(self, folder: Path, epochs_done: int) -> None:
        self.epochs_done.assign(epochs_done)
        manager = tf.train.CheckpointManager(
            self.checkpoint, str(folder), max_to_keep=2
        )
        manager.save(checkpoint_number=epochs_done)

    def restore(self, folder: Path) -> int:
        """Restores the last checkpoint; returns the epochs it had completed."""
        latest = tf.train.latest_checkpoint(str(folder))
        if latest is None:
            return 0
        self.checkpoint.restore(latest).expect_partial()
        return int(self.epochs_done.numpy())


def _load(config: NasConfig, seed: int):
    return data.load(
        config.dataset,
        batch_size=config.batch_size,
        validation_fraction=0.5,
        max_samples=config.max_samples,
        seed=seed,
    )


def _check_out_dir(config: NasConfig, out: Path, resume: bool) -> NasConfig:
    saved = out / "config.json"
    if resume:
        if not saved.exists():
            raise FileNotFoundError(
                f"--resume found no search in {str(out)!r} (no config.json); "
                "expected the --out folder of an earlier `keras-bnn-af nas`. Fix: "
                "point --out at it, or drop --resume to start one."
            )
        previous = NasConfig.from_json(json.loads(saved.read_text()))
        return dataclasses.replace(previous, epochs=max(previous.epochs, config.epochs))
    if saved.exists() or (out / "history.jsonl").exists():
        raise FileExistsError(
            f"{str(out)!r} already holds a search; expected a new or empty --out "
            "folder. Fix: pass --resume to continue it, or another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, warmup_epochs=config.warmup)
    write_atomic(saved, config.dumps())
    return config


def _append(path: Path, record: dict) -> None:
    with path.open("a") as stream:
        stream.write(json.dumps(record) + "\n")


def _progress(record: dict, config: NasConfig) -> str:
    genotype = Genotype.from_json(record["genotype"])
    normal = " ".join(f"{op}<-{source}" for op, source in genotype.normal)
    return (
        f"epoch {record['epoch'] + 1}/{config.epochs} [{record['phase']}] "
        f"loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f} "
        f"val_acc {record['val_accuracy']:.4f} {record['seconds']:.1f}s "
        f"({record['step_ms']:.0f} ms/step) normal: {normal}"
    )
