"""Print the N-th ```bash block of README.md (1-based), as written: `.ci/run` runs the README's own
commands, read at run time, so the README cannot drift from what CI proves works."""
from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def command(number: int, text: str) -> str:
    blocks = BLOCK.findall(text)
    if not 1 <= number <= len(blocks):
        raise SystemExit(f"README.md has {len(blocks)} bash blocks; there is no block {number}")
    return blocks[number - 1].strip()


if __name__ == "__main__":
    print(command(int(sys.argv[1]), README.read_text(encoding="utf-8")))
