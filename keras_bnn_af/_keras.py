"""The one place keras-bnn-af gets Keras from.

Larq, larq-zoo, LCE and keras-tuner must all see the same Keras. With the pinned
TensorFlow 2.15 that is `tf.keras` (Keras 2); every other module imports `keras`
from here, so a move to `tf_keras` on a newer TensorFlow is a one-line change.
"""

import tensorflow as tf

keras = tf.keras

__all__ = ["current_layer", "keras", "tf"]


def current_layer():
    """The Keras layer whose `__call__` is running, or None outside any layer call.

    Keras 2 keeps this in a private call context; binarizers use it to notice
    that one stateful instance is being called by two different layers.
    """
    from keras.src.engine.base_layer_utils import call_context

    return call_context().layer
