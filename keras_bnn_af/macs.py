r"""Multiply-accumulates (MACs) by precision: one count for training and export.

```python
macs = layer_macs(model)
count(macs, 1), count(macs), binary_share(macs)
binary_share(macs, float_layers={"conv_1"})  # as run when conv_1 stays float
```

Larq's `lq.models.ModelProfile` gives a conv or dense layer one MAC count per
non-bias weight \\(w\\), \\(n = |w| \cdot P\\) for \\(P\\) output pixels, at
precision \\(\max(b_\text{input}, b_w)\\). A quantizer with weights of its own
(an RSign threshold \\(\alpha\\), a learnable GAAF scale) is a sublayer, so
Larq counts \\(|\alpha| \cdot P\\) 32-bit MACs for it that no convolution
performs: the threshold is an elementwise op, and threshold folding removes it
at export. Those counts are left out here, so the binary MAC share

\\[
\text{share} = \frac{\sum_{b = 1} n}{\sum n}
\\]

is that of the layers' own weights, in `metrics.json` (`binary_mac_ratio`) and
in the export report (`binary_mac_share`) alike.
"""

from collections.abc import Collection
from dataclasses import dataclass

import larq as lq

from keras_bnn_af._keras import keras
from keras_bnn_af.models import quantizer_weights

__all__ = ["LayerMacs", "binary_share", "count", "layer_macs"]


@dataclass(frozen=True)
class LayerMacs:
    """The MACs of one weight of one layer, at one precision (bits)."""

    layer: str
    precision: int
    macs: int


def layer_macs(model: keras.Model) -> list[LayerMacs]:
    """Every MAC count Larq profiles, nested models expanded, without the MACs
    it attributes to quantizer-owned weights."""
    return [
        LayerMacs(profile.name, op.precision, op.n)
        for profile in _layer_profiles(lq.models.ModelProfile(model))
        for weight, op in _weight_ops(profile)
        if not _owned_by_quantizer(weight, profile)
    ]


def count(macs: list[LayerMacs], precision: int | None = None) -> int:
    """The MACs at `precision` bits (all of them for None)."""
    return sum(m.macs for m in macs if precision is None or m.precision == precision)


def binary_share(macs: list[LayerMacs], *, float_layers: Collection[str] = ()) -> float:
    """Binary MACs / all MACs (0.0 without MACs); the MACs of `float_layers`
    count as not binary (e.g. the binary layers LCE left in float)."""
    total = count(macs)
    binary = sum(
        m.macs for m in macs if m.precision == 1 and m.layer not in float_layers
    )
    return binary / total if total else 0.0


def _layer_profiles(profile):
    for child in profile.layer_profiles:
        if hasattr(child, "layer_profiles"):
            yield from _layer_profiles(child)
        else:
            yield child


def _weight_ops(profile) -> list:
    """(weight, MAC op) pairs: Larq makes one op per non-bias weight, in order."""
    if not profile.op_profiles:  # a layer without MACs
        return []
    weights = [p._weight for p in profile.weight_profiles if not p.is_bias()]
    return list(zip(weights, profile.op_profiles, strict=True))


def _owned_by_quantizer(weight, profile) -> bool:
    return any(weight is owned for owned in quantizer_weights(profile._layer))
