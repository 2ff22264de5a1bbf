"""docs/checkin-rules.md names, for each rule, its error code and the test that proves it: keep it true."""

from __future__ import annotations

import re

from server.config import ROOT
from server.errors import ErrorCode

RULES = ROOT / "docs" / "checkin-rules.md"


def test_every_test_the_rules_name_exists() -> None:
    text = RULES.read_text(encoding="utf-8")
    tests = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py"))
    files = {path.stem for path in (ROOT / "tests").rglob("test_*.py")}
    named = set(re.findall(r"\btest_[a-z0-9_]+", text))
    assert named, "the rules name their tests"
    missing = {name for name in named if name not in files and f"def {name}(" not in tests}
    assert missing == set()


def test_every_error_code_the_rules_name_exists() -> None:
    codes = set(re.findall(r"`([a-z_]+)` \(\d{3}", RULES.read_text(encoding="utf-8")))
    assert codes and codes <= {code.value for code in ErrorCode}
