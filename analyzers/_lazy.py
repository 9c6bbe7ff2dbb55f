"""PEP 562 lazy public names, shared by the ``analyzers`` and ``otel_monitoring`` packages.

Importing either package costs only this module: each public name loads its submodule (and
with it numpy, scipy, FastAPI, the SDK...) on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, table: Mapping[str, str], namespace: dict[str, Any], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__``: ``table`` maps each public name to the
    submodule of ``package`` that defines it; a loaded name is cached in ``namespace`` (the
    module's ``globals()``), so each loads once. Unknown names raise ``AttributeError``."""
    listed = tuple(public)

    def load(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted({*namespace, *listed})

    return load, names
