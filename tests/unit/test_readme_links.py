"""The README's links into the documentation lead to pages that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_links_resolve() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert len([t for t in local if t.startswith("docs/")]) >= 15
    missing = [t for t in local if not (ROOT / t).is_file()]
    assert missing == []
    # Every page of the site's guides is linked from the README.
    guides = {f"docs/guides/{p.name}" for p in (ROOT / "docs" / "guides").glob("*.md")}
    assert guides <= set(local)
