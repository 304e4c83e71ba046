"""Every public name has a docstring, as the reference pages read it.

The public names are the ``__all__`` of ``pygwire`` and of every public
submodule (those whose dotted name has no part starting with an
underscore), plus the public methods and properties of every public
class.  Docstrings are read the way the documentation build reads them:
with griffe, from the source, so a docstring that only exists at run time
(a dataclass's generated signature line) does not count, and a constant
counts when a docstring follows its assignment.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

import griffe
import pytest

import pygwire

SRC = "src"


def public_modules() -> list[str]:
    """``pygwire`` and every submodule without an underscore in its name."""
    names = ["pygwire"]
    for info in pkgutil.walk_packages(pygwire.__path__, "pygwire."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


@cache
def package() -> griffe.Module:
    loaded = griffe.load("pygwire", search_paths=[SRC], resolve_aliases=True)
    assert isinstance(loaded, griffe.Module)
    return loaded


def static(module: str) -> griffe.Module:
    root = package()
    found = root if module == "pygwire" else root[module.removeprefix("pygwire.")]
    assert isinstance(found, griffe.Module)
    return found


def resolved(obj: griffe.Object | griffe.Alias) -> griffe.Object:
    return obj.final_target if isinstance(obj, griffe.Alias) else obj


def documented(obj: griffe.Object) -> bool:
    return bool(obj.docstring and obj.docstring.value.strip())


def missing(mod: griffe.Module, names: list[str], module: str) -> list[str]:
    """Which of the module, its ``names`` and their classes' public
    methods have no docstring."""
    missing = [] if documented(mod) else [module]
    for name in names:
        if name == "__version__":
            continue  # a version string documents itself
        obj = resolved(mod[name])
        where = f"{module}.{name}"
        if not documented(obj):
            missing.append(where)
        if isinstance(obj, griffe.Class):
            for member_name, member in obj.members.items():
                if member_name.startswith("_") or isinstance(member, griffe.Alias):
                    continue
                if isinstance(member, griffe.Function) and not documented(member):
                    missing.append(f"{where}.{member_name}")
    return missing


def test_the_walk_finds_the_modules_the_reference_documents() -> None:
    modules = public_modules()
    for expected in (
        "pygwire.messages",
        "pygwire.auth",
        "pygwire.replication",
        "pygwire.trace",
        "pygwire.tls",
        "pygwire.types",
        "pygwire.sql",
        "pygwire.codec",
        "pygwire.connection",
        "pygwire.state_machine",
        "pygwire.constants",
        "pygwire.exceptions",
        "pygwire.client",
        "pygwire.cli",
        "pygwire.cli.proxy",
        "pygwire.messages.startup",
    ):
        assert expected in modules
    assert not [m for m in modules if "._" in m]


@pytest.mark.parametrize("module", public_modules())
def test_every_public_module_declares_its_names(module: str) -> None:
    runtime = importlib.import_module(module)
    assert isinstance(getattr(runtime, "__all__", None), list), f"{module} has no __all__"
    # What the documentation build reads is what Python exports.
    assert set(static(module).exports or ()) == set(runtime.__all__)


@pytest.mark.parametrize("module", public_modules())
def test_every_public_name_has_a_docstring(module: str) -> None:
    names = list(importlib.import_module(module).__all__)
    assert missing(static(module), names, module) == []


def test_the_check_sees_a_missing_docstring() -> None:
    # A module in memory: a documented function, a bare one, a class whose
    # public method has no docstring, and an undocumented constant.
    code = """\
\"\"\"A module.\"\"\"
__all__ = ["good", "bare", "Thing", "LIMIT", "NAMED"]
def good() -> None:
    \"\"\"Documented.\"\"\"
def bare() -> None: ...
class Thing:
    \"\"\"Documented.\"\"\"
    def method(self) -> None: ...
    def _private(self) -> None: ...
LIMIT = 3
NAMED = 4
\"\"\"Documented after its assignment.\"\"\"
"""
    mod = griffe.visit("example", filepath=Path("example.py"), code=code)
    names = ["good", "bare", "Thing", "LIMIT", "NAMED"]
    assert missing(mod, names, "example") == [
        "example.bare",
        "example.Thing.method",
        "example.LIMIT",
    ]
