"""A clone holds everything its README points to, and `make demo PORT=…` serves there (#15)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
QUOTED_PATH = re.compile(r"`([^`\s]*\.(?:md|py|toml|json|cfg))`")


def test_readme_links_stay_inside_the_repository():
    readme = (ROOT / "README.md").read_text("utf-8")
    targets = [t for t in LINK.findall(readme) if not re.match(r"[a-z]+:", t)]
    # Quoted file names count too, except the app's URL paths and placeholders (`<instance>/…`).
    targets += [
        t for t in QUOTED_PATH.findall(readme) if not t.startswith("/api/") and "<" not in t
    ]
    assert "docs/product.md" in targets and "docs/api.md" in targets
    for target in targets:
        assert not target.startswith("/"), f"README points outside the repository: {target}"
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"README points outside the repository: {target}"
        assert path.exists(), f"README points to a missing file: {target}"


@pytest.mark.parametrize("name", ["product.md", "api.md"])
def test_product_and_contract_are_in_docs(name):
    text = (ROOT / "docs" / name).read_text("utf-8")
    assert len(text) > 1000 and "/work/" not in text


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_passes_the_port(tmp_path):
    """`make demo PORT=5100` runs `market demo --port 5100` (dry run: nothing executes)."""
    out = subprocess.run(
        ["make", "-n", "demo", "PORT=5100", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert re.search(r"/bin/market demo --port 5100\b", out), out
