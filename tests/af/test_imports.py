"""The AF language and the GA operators import without TensorFlow."""

import subprocess
import sys

PROGRAM = """
import sys
import keras_bnn_af.searchers.operators, keras_bnn_af.searchers.af_tree
from keras_bnn_af.af import parse, resolve, from_genome, is_viable

tree = parse("x + sin(scale(x))")
assert str(resolve("x_plus_sin_x")) == "x + sin(x)" and is_viable(tree)
assert from_genome([6, 0, 0]) == parse("sin(x) + x")
loaded = sorted(m for m in ("tensorflow", "keras", "keras_tuner", "larq")
                if m in sys.modules)
print(",".join(loaded) or "none")
"""


def test_language_and_operators_do_not_load_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "none"


def test_evaluate_tf_loads_tensorflow_on_first_use():
    program = (
        "import sys\nimport keras_bnn_af.af as af\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(af.evaluate_tf(af.parse('x'), [1.0]).numpy()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("1.0")
