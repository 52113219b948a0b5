"""The cell's candidate operations: binary and LCE-fusable, or parameter-free.

Every operation maps `C` channels to `C` channels at stride 1 (normal cells)
or 2 (reduction cells):

| name | operation | LCE op |
|---|---|---|
| `bconv_3x3`, `bconv_5x5` | binarizer -> binary conv k x k -> BN | `LceBconv2d` |
| `dil_bconv_3x3`, `dil_bconv_5x5` | the same, dilation 2 | `LceBconv2d` |
| `group_bconv_3x3` | the same, 2 groups | `LceBconv2d` if `C/2 % 32 == 0` |
| `max_pool_3x3` | max pooling 3 x 3 -> BN | `MAX_POOL_2D` |
| `avg_pool_3x3` | average pooling 3 x 3 -> BN | `AVERAGE_POOL_2D` |
| `skip` | identity; stride 2: binarizer -> binary 1 x 1 conv -> BN | `LceBconv2d` |
| `zero` | zeros (only in the supernet: "no edge") | - |

Keras and TFLite have no conv with both stride 2 and dilation 2, so on a
reduction cell's stride-2 edges the dilated convs run at stride 1 and keep
every second row and column (a `StridedSlice` after the `LceBconv2d`, and 4x
the conv's work, which the latency model sees).

LCE's converter fuses dilated binary convs, and grouped ones only when each
group has a multiple of 32 input channels (it refuses "the number of input
channels per-group must be a multiple of 32" and leaves the conv in float), so
`group_bconv_3x3` is not in the default space and `check_channels` refuses it
where the derived net could not fuse it. Weights are binarized with
`ste_sign` after `weight_clip`, activations with the search's binarizer
(`approx_sign`, ApproxSign, by default): `models.binary_conv2d`.

Pure Python (no TensorFlow): the Keras layers of each op are in `layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_bnn_af._errors import did_you_mean

__all__ = ["DEFAULT_OPS", "OPS", "OpSpec", "check_channels", "check_op", "check_ops"]


@dataclass(frozen=True)
class OpSpec:
    """One candidate operation: `kind` is binary_conv, pool, skip or zero."""

    kind: str
    kernel: int = 1
    dilation: int = 1
    groups: int = 1
    pool: str = ""

    @property
    def parameter_free(self) -> bool:
        """True for the ops DARTS collapses into (skip and pooling) at stride 1."""
        return self.kind in ("skip", "pool")


OPS = {
    "bconv_3x3": OpSpec("binary_conv", kernel=3),
    "bconv_5x5": OpSpec("binary_conv", kernel=5),
    "dil_bconv_3x3": OpSpec("binary_conv", kernel=3, dilation=2),
    "dil_bconv_5x5": OpSpec("binary_conv", kernel=5, dilation=2),
    "group_bconv_3x3": OpSpec("binary_conv", kernel=3, groups=2),
    "max_pool_3x3": OpSpec("pool", kernel=3, pool="max"),
    "avg_pool_3x3": OpSpec("pool", kernel=3, pool="avg"),
    "skip": OpSpec("skip"),
    "zero": OpSpec("zero"),
}
DEFAULT_OPS = (
    "zero",
    "skip",
    "max_pool_3x3",
    "avg_pool_3x3",
    "bconv_3x3",
    "bconv_5x5",
    "dil_bconv_3x3",
    "dil_bconv_5x5",
)


def check_op(name: str) -> str:
    """`name` if it is an operation of `OPS`; otherwise ValueError listing them."""
    if name not in OPS:
        raise ValueError(
            f"Unknown UBNAS operation {name!r}{did_you_mean(name, OPS, inline=True)}; "
            f"expected one of {', '.join(OPS)}. Fix: choose the operations from "
            "that list."
        )
    return name


def check_ops(ops) -> tuple[str, ...]:
    """The op names as a tuple; an unknown or repeated name raises ValueError."""
    ops = tuple(check_op(name) for name in ops)
    repeated = sorted({name for name in ops if ops.count(name) > 1})
    if repeated or len(ops) < 2:
        raise ValueError(
            f"UBNAS operations {list(ops)} "
            + (f"repeat {repeated}" if repeated else "offer no choice")
            + "; expected at least two different operations. Fix: list each "
            "operation once, e.g. the default "
            f"{', '.join(DEFAULT_OPS)}."
        )
    return ops


def check_channels(ops, channels: int, where: str) -> None:
    """Refuses grouped binary convs LCE would not fuse at `channels` channels."""
    for name in ops:
        groups = OPS[name].groups
        if groups > 1 and (channels // groups) % 32:
            raise ValueError(
                f"{name!r} in {where} has {channels} channels, "
                f"{channels // groups} per group; LCE fuses a grouped binary conv "
                "only with a multiple of 32 input channels per group. Fix: use "
                f"channels that are a multiple of {32 * groups} there, or drop "
                f"{name!r}."
            )
