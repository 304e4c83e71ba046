"""What the reference pages need from pygwire's docstrings, at build time.

A griffe extension (mkdocstrings loads it, see ``mkdocs.yml``):

* The docstrings use Sphinx's roles (``:class:`Reader```,
  ``:meth:`~Connection.send```), as Python's own tools read them.  Each
  becomes a cross-reference to the object's page when the reference shows
  that object, and plain code otherwise (an internal helper, the standard
  library): the name is resolved where the docstring stands, as Python
  would resolve it there.  reStructuredText's ``::`` before a literal block
  becomes ``:``.
* Every message class gets its fields and its wire layout appended,
  derived from its declaration and its encoder by :mod:`wire_layout`, so
  no layout is written twice.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).parent))
from wire_layout import declarations, fields_markdown, layout_markdown

__all__ = ["PygwireDocstrings", "convert_roles"]

_ROLE = re.compile(r":(?:class|meth|func|data|mod|attr|exc|obj|const):`(~?)([^`<>]+)`")
_LITERAL = re.compile(r"::\n")


def _lookup(root: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    """The object at the full ``path`` inside ``root``'s package, if any."""
    if path == root.path:
        return root
    if not path.startswith(root.path + "."):
        return None
    try:
        found: griffe.Object | griffe.Alias = root[path[len(root.path) + 1 :]]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return found


def _canonical(root: griffe.Module, path: str) -> str:
    """``path`` with aliases followed to where the object is defined."""
    obj = _lookup(root, path)
    if obj is None:
        return path
    try:
        return str(obj.final_target.path) if isinstance(obj, griffe.Alias) else str(obj.path)
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return path


def _target(obj: griffe.Object, name: str) -> str:
    """The full path of ``name`` as written in ``obj``'s docstring."""
    if name.startswith("."):
        # Relative to the module that holds the docstring (Sphinx's rule).
        module = obj if obj.is_module else obj.module
        base = module.path if module.is_package else module.path.rsplit(".", 1)[0]
        return f"{base}.{name.lstrip('.')}"
    head, _, rest = name.partition(".")
    scope: griffe.Object | None = obj if obj.is_class or obj.is_module else obj.parent
    while scope is not None:
        try:
            resolved = scope.resolve(head)
        except griffe.NameResolutionError:
            scope = scope.parent
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return name


def convert_roles(text: str, obj: griffe.Object) -> str:
    """``text`` with Sphinx roles as optional cross-references."""

    def link(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2).strip()
        title = name.rsplit(".", 1)[-1] if short else name.lstrip(".")
        target = _canonical(obj.module.package, _target(obj, name))
        return (
            f'<autoref identifier="{html.escape(target)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    return _LITERAL.sub(":\n", _ROLE.sub(link, text))


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if member.is_alias:
            continue
        assert isinstance(member, griffe.Object)
        found += _walk(member)
    return found


class PygwireDocstrings(griffe.Extension):
    """Converts roles and appends wire layouts once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and its members in place."""
        if pkg.name != "pygwire":
            return
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert_roles(obj.docstring.value, obj)
        for declaration in declarations():
            cls = declaration.cls
            table = layout_markdown(cls)
            path = f"{cls.__module__}.{cls.__qualname__}"
            target = _lookup(pkg, path)
            if not table or not isinstance(target, griffe.Object):
                continue
            section = f"**Wire layout.** {table}"
            fields = fields_markdown(cls)
            if fields:
                intro = "**Fields** (keyword arguments, each with a default):"
                section = f"{intro}\n\n{fields}\n{section}"
            if target.docstring is None:
                target.docstring = griffe.Docstring(section, parent=target)
            else:
                target.docstring.value += "\n\n" + section
