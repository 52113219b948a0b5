r"""Folding a BatchNorm and the sign after it: the two folds share one reading.

With \\(\sigma_c = \sqrt{v_c + \epsilon}\\), an inference-mode BatchNorm over
the last axis computes, per channel \\(c\\),

\\[
\mathrm{BN}(x)_c = \gamma_c \frac{x_c - \mu_c}{\sigma_c} + \beta_c ,
\\]

and \\(\operatorname{sign}(0) = +1\\) throughout. Two identities fold it:

- **Threshold into offset** (`fold_thresholds`, used by the export). A binarizer
  that is a per-channel threshold, \\(q(y)_c = \operatorname{sign}(y_c - t_c)\\),
  after the BatchNorm gives
  \\(\operatorname{sign}(\gamma_c (x_c - \mu_c) / \sigma_c + (\beta_c - t_c))\\):
  the model with \\(\beta' = \beta - t\\) and a plain sign computes the same, and
  LCE fuses that sign into the binary conv's output threshold.
- **BatchNorm + sign into a comparison** (`fold_batch_norm_sign`, Self-Binarizing
  Networks' binary BatchNorm):
  \\(\operatorname{sign}(\mathrm{BN}(x)_c) = \operatorname{sign}(s_c (x_c - \tau_c))\\)
  with \\(s_c = \operatorname{sign}(\gamma_c)\\) and
  \\(\tau_c = \mu_c - \beta_c \sigma_c / \gamma_c\\) (\\(\gamma_c \neq 0\\)).

Both read and check the BatchNorm with `read_batch_norm` (built, last axis
only, missing scale / offset as \\(\gamma = 1\\) / \\(\beta = 0\\), finite
values, \\(v + \epsilon > 0\\)).

Names load on first use, because `keras_bnn_af.quantizers` re-exports
`fold_batch_norm_sign` (see `keras_bnn_af._lazy`).
"""

from keras_bnn_af._lazy import lazy_attributes

_BATCH_NORM = "keras_bnn_af.converters.folding.batch_norm"
_THRESHOLDS = "keras_bnn_af.converters.folding.thresholds"
_MODULES = {
    _BATCH_NORM: [
        "BatchNormParameters",
        "FoldedSign",
        "fold_batch_norm_sign",
        "read_batch_norm",
    ],
    _THRESHOLDS: ["ThresholdFold", "fold_thresholds"],
}
#: Public name -> (module, attribute), imported on first access.
_LAZY = {name: (module, name) for module, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(
    __name__, globals(), _LAZY, ("batch_norm", "thresholds")
)
