"""The one place keras-bnn-af gets Keras from.

Larq, larq-zoo, LCE and keras-tuner must all see the same Keras. With the pinned
TensorFlow 2.15 that is `tf.keras` (Keras 2); every other module imports `keras`
from here, so a move to `tf_keras` on a newer TensorFlow is a one-line change.
"""

import tensorflow as tf

keras = tf.keras

__all__ = ["keras", "tf"]
