"""Module attributes that are imported on first access (PEP 562)."""

import importlib
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str,
    namespace: dict,
    attributes: Mapping[str, tuple[str, str]],
    submodules: Sequence[str],
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, whose globals are `namespace`.

    `attributes` maps a public name to `(module, attribute)`; `submodules` are
    names of `package`'s own modules. Each is imported once, on first access,
    and then kept in `namespace`.
    """

    def __getattr__(name: str):
        if name in attributes:
            module, attribute = attributes[name]
            value = getattr(importlib.import_module(module), attribute)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *attributes, *submodules})

    return __getattr__, __dir__
