"""Deprecated path of the AF language; use `keras_bnn_af.af` instead.

`from keras_bnn_af.quantizers import af` keeps working and gives the same names
as `from keras_bnn_af import af` (the language moved to its own package, which
imports without TensorFlow).
"""

from keras_bnn_af.af import *  # noqa: F403
from keras_bnn_af.af import __all__  # noqa: F401
from keras_bnn_af.af.tf_ops import evaluate_tf  # noqa: F401
