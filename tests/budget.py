"""How many examples the property and fuzz tests draw.

``make test`` draws the full number; ``make check`` (the quick offline loop)
sets ``PYGWIRE_EXAMPLES_SCALE`` below 1 and every test draws that share of
it, so that the same tests run, only shallower.
"""

from __future__ import annotations

import os

__all__ = ["SCALE", "examples"]

SCALE = float(os.environ.get("PYGWIRE_EXAMPLES_SCALE", "1"))


def examples(n: int) -> int:
    """``n`` examples, scaled (at least 5)."""
    return max(5, round(n * SCALE))
