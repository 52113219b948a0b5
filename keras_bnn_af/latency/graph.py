"""A converted `.tflite` model as a list of operators, read with the TFLite schema.

```python
graph = read_graph("model.tflite")
[(op.name, op.outputs[0].shape) for op in graph.ops]
```

`read_graph` parses the flatbuffer with TensorFlow's generated schema module
(`tensorflow/lite/python/schema_py_generated.py`), which needs only the
`flatbuffers` package; it is loaded from its file, so reading a graph does not
import TensorFlow. Only subgraph 0, the model's main function, is read; its
operators are stored in execution order.

`Op.options` holds the scalar fields of a builtin op's options table, in snake
case (`Conv2DOptions.strideH` is `stride_h`, `Pool2DOptions.filterWidth` is
`filter_width`), and for a custom op the FlexBuffer map of its
`custom_options` (LCE's `LceBconv2d`: `channels_in`, `stride_height`,
`stride_width`, `dilation_height_factor`, `dilation_width_factor`, `padding`,
`pad_values`, `fused_activation_function`). In both, `padding` is a
`Padding` name (`"SAME"`, `"VALID"`) and `fused_activation_function` an
`ActivationFunctionType` name (`"NONE"`, `"RELU"`, ...).
"""

import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

from flatbuffers import flexbuffers

from keras_bnn_af.benchmarks.host import read_tflite

__all__ = ["Graph", "Op", "TensorInfo", "read_graph"]

_SCHEMA_MODULE = "keras_bnn_af.latency._tflite_schema"
_ENUM_OPTIONS = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: `shape` (empty for a scalar), `dtype` (`"float32"`,
    `"int32"`, `"int8"`, ...), `name`, and `is_constant` (a non-empty buffer)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    is_constant: bool

    @property
    def size(self) -> int:
        """The element count \\(\\prod_i \\text{shape}_i\\) (1 for a scalar)."""
        count = 1
        for dim in self.shape:
            count *= dim if dim >= 0 else 1
        return count


@dataclass(frozen=True)
class Op:
    """One operator: its builtin name or custom code, tensors and options.

    An optional input the model leaves out (index -1) is None in `inputs`.
    """

    name: str
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """Subgraph 0 of a model: its ops in execution order, inputs and outputs."""

    ops: tuple[Op, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]


def read_graph(model: str | Path | bytes) -> Graph:
    """The operators of a `.tflite` model (a path or the flatbuffer's bytes).

    Raises ValueError for a missing file or bytes that are not a TFLite
    flatbuffer (identifier `TFL3` at bytes 4-8).
    """
    flatbuffer, _ = read_tflite(model)
    root = schema().Model.GetRootAs(flatbuffer, 0)
    names = _operator_names(root)
    subgraph = root.Subgraphs(0)
    tensors = [
        _tensor(root, subgraph.Tensors(i)) for i in range(subgraph.TensorsLength())
    ]
    ops = tuple(
        _op(subgraph.Operators(i), names, tensors)
        for i in range(subgraph.OperatorsLength())
    )
    return Graph(
        ops=ops,
        inputs=tuple(tensors[i] for i in subgraph.InputsAsNumpy()),
        outputs=tuple(tensors[i] for i in subgraph.OutputsAsNumpy()),
    )


@cache
def schema() -> ModuleType:
    """TensorFlow's generated TFLite schema module, loaded without TensorFlow."""
    package = importlib.util.find_spec("tensorflow")
    locations = package.submodule_search_locations if package else None
    if not locations:
        raise ImportError(
            "TensorFlow is not installed in this Python, and its TFLite schema "
            "module reads the flatbuffer. Install the project's dependencies "
            "(`pip install -e .`)."
        )
    path = Path(locations[0], "lite", "python", "schema_py_generated.py")
    spec = importlib.util.spec_from_file_location(_SCHEMA_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _enum_names(enum: str) -> dict[int, str]:
    """`{value: name}` of one of the schema's enums, e.g. `BuiltinOperator`."""
    return {
        value: name
        for name, value in vars(getattr(schema(), enum)).items()
        if not name.startswith("_")
    }


def _operator_names(root) -> list[str]:
    """Builtin name or custom code of each operator code, by index.

    The builtin code is `max(deprecated_builtin_code, builtin_code)`, as in
    TensorFlow's `schema_util.get_builtin_code_from_operator_code`.
    """
    builtin_names = _enum_names("BuiltinOperator")
    names = []
    for index in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(index)
        builtin = max(code.DeprecatedBuiltinCode(), code.BuiltinCode())
        if builtin == schema().BuiltinOperator.CUSTOM:
            names.append(code.CustomCode().decode())
        else:
            names.append(builtin_names[builtin])
    return names


def _tensor(root, tensor) -> TensorInfo:
    buffer = root.Buffers(tensor.Buffer())
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    return TensorInfo(
        name=tensor.Name().decode(),
        shape=shape,
        dtype=_enum_names("TensorType")[tensor.Type()].lower(),
        is_constant=bool(buffer is not None and (buffer.DataLength() or buffer.Size())),
    )


def _op(op, names: list[str], tensors: list[TensorInfo]) -> Op:
    return Op(
        name=names[op.OpcodeIndex()],
        inputs=tuple(tensors[i] if i >= 0 else None for i in op.InputsAsNumpy()),
        outputs=tuple(tensors[i] for i in op.OutputsAsNumpy()),
        options=_named(
            _custom_options(op) if op.CustomOptionsLength() else _builtin_options(op)
        ),
    )


def _builtin_options(op) -> dict:
    """The scalar fields of the op's options table, in snake case."""
    table = op.BuiltinOptions()
    options = table and schema().BuiltinOptionsCreator(op.BuiltinOptionsType(), table)
    if options is None:
        return {}
    return {
        _snake_case(key): value
        for key, value in vars(options).items()
        if isinstance(value, bool | int | float)
    }


def _custom_options(op) -> dict:
    """The FlexBuffer map of the op's `custom_options` (LCE writes one)."""
    root = flexbuffers.GetRoot(bytes(op.CustomOptionsAsNumpy()))
    return dict(root.Value) if root.IsMap else {}


def _named(options: dict) -> dict:
    """`padding` and `fused_activation_function` as their schema enum names."""
    return {
        key: _enum_names(_ENUM_OPTIONS[key]).get(value, value)
        if key in _ENUM_OPTIONS
        else value
        for key, value in options.items()
    }


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
