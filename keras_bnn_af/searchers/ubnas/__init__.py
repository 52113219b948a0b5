"""UBNAS-style differentiable binary architecture search on Keras and Larq.

```python
from keras_bnn_af.searchers.ubnas import NasConfig, build_derived, run_nas

outcome = run_nas(NasConfig(dataset="mnist", epochs=10), "nas/mnist")
model = build_derived(outcome.genotype, input_shape=(28, 28, 1), num_classes=10,
                      cells=3, channels=8)      # train, then export_lce(model)
```

- `space`: the candidate operations, binary and LCE-fusable (binary convs 3x3
  and 5x5, dilated ones, grouped ones where LCE fuses them) or parameter-free
  (max / avg pool, skip, zero); `layers`: their Keras layers.
- `supernet`: DARTS cells of partial-channel mixed edges (PC-DARTS), α per
  edge and op, edge normalisation β.
- `search`: first-order alternating updates (weights on the training split,
  α and β on the held-out split), warm-up, early stop on a stable genotype,
  checkpoints and resume.
- `genotype`: the derived cell (top-2 inputs per node, no zero) with a cap on
  parameter-free ops against the DARTS collapse; JSON.
- `derived`: the discrete Larq net of a genotype; every binary conv one
  `LceBconv2d` after `export_lce`.

UBNAS's own operation list, sampling ratio and stopping rule are not public;
this follows its abstract (ApproxSign, a binary op space, channel sampling,
early stopping) and its closest public relative, EBNAS (PC-DARTS partial
channels, the `clamp(2 - 2|x|, 0)` backward, architecture updates from half
way).
"""

from keras_bnn_af._lazy import lazy_attributes

_LAZY = {
    "NasConfig": ("keras_bnn_af.searchers.ubnas.config", "NasConfig"),
    "NasOutcome": ("keras_bnn_af.searchers.ubnas.search", "NasOutcome"),
    "run_nas": ("keras_bnn_af.searchers.ubnas.search", "run_nas"),
    "read_history": ("keras_bnn_af.searchers.ubnas.search", "read_history"),
    "Genotype": ("keras_bnn_af.searchers.ubnas.genotype", "Genotype"),
    "derive": ("keras_bnn_af.searchers.ubnas.genotype", "derive"),
    "Supernet": ("keras_bnn_af.searchers.ubnas.supernet", "Supernet"),
    "build_derived": ("keras_bnn_af.searchers.ubnas.derived", "build_derived"),
    "OPS": ("keras_bnn_af.searchers.ubnas.space", "OPS"),
    "DEFAULT_OPS": ("keras_bnn_af.searchers.ubnas.space", "DEFAULT_OPS"),
}
__all__ = sorted(_LAZY)
_SUBMODULES = (
    "config",
    "deploy",
    "derived",
    "genotype",
    "hyper",
    "layers",
    "plots",
    "search",
    "space",
    "supernet",
)
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
