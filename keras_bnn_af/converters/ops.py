"""What a TFLite flatbuffer computes: its operators, counted by name."""

from collections import Counter

from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.python import schema_util

_BUILTIN_NAMES = {
    code: name
    for name, code in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}


def op_counts(flatbuffer: bytes) -> Counter:
    """Counts the operators of every subgraph, by builtin name or custom code.

    ```python
    op_counts(lce.convert_keras_model(model))["LceBconv2d"]
    ```
    """
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = schema_util.get_builtin_code_from_operator_code(code)
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.append(code.CustomCode().decode())
        else:
            names.append(_BUILTIN_NAMES[builtin])
    counts: Counter = Counter()
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for op_index in range(graph.OperatorsLength()):
            counts[names[graph.Operators(op_index).OpcodeIndex()]] += 1
    return counts
