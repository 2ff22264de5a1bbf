"""docs/checkin-rules.md names, for each rule, its error code and the test that proves it, and
docs/security.md the test behind each defence: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.config import ROOT
from server.errors import ErrorCode

RULES = ROOT / "docs" / "checkin-rules.md"
SECURITY = ROOT / "docs" / "security.md"


@pytest.mark.parametrize("doc", [RULES, SECURITY], ids=lambda path: path.name)
def test_every_test_the_docs_name_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    tests = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py"))
    files = {path.stem for path in (ROOT / "tests").rglob("test_*.py")}
    named = set(re.findall(r"\btest_[a-z0-9_]+", text))
    assert named, "the rules name their tests"
    missing = {name for name in named if name not in files and f"def {name}(" not in tests}
    assert missing == set()


def test_every_error_code_the_rules_name_exists() -> None:
    codes = set(re.findall(r"`([a-z_]+)` \(\d{3}", RULES.read_text(encoding="utf-8")))
    assert codes and codes <= {code.value for code in ErrorCode}
