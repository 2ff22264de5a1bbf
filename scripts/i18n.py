"""Translation chores: `python scripts/i18n.py check` lists msgids used in the code without a Vietnamese
translation (the test suite runs the same check); `extract` writes them to messages.pot for translators."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = ["-k", "N_", "-k", "_", "-k", "gettext:2", "-k", "ngettext:1,2"]


def extract(output: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            *KEYWORDS,
            "--no-location",
            "--omit-header",
            "-o",
            str(output),
            ".",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )


def untranslated(language: str = "vi") -> list[str]:
    """msgids used in the code that no .po file of `language` translates."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot)
        with pot.open("rb") as f:
            wanted = [m.id for m in read_po(f) if m.id]
    have: set[str] = set()
    for po_path in sorted((ROOT / "server" / "locale" / language / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as f:
            for message in read_po(f):
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if message.id and all(strings) and not message.fuzzy:
                    have.add(message.id if isinstance(message.id, str) else message.id[0])
    missing = []
    for msgid in wanted:
        key = msgid if isinstance(msgid, str) else msgid[0]
        if key not in have:
            missing.append(key)
    return missing


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "extract":
        extract(ROOT / "messages.pot")
        print("wrote messages.pot")
    else:
        gaps = untranslated()
        print("\n".join(gaps) or "every message has a Vietnamese translation")
        raise SystemExit(1 if gaps else 0)
