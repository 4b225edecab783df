"""What the private-state tests look for (issue 16, item 3): anything group or others may use."""
from __future__ import annotations

import stat
from pathlib import Path


def open_to_others(home: Path) -> list[str]:
    """`home` and the entries under it that group or others may use (links aside: their mode means nothing)."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
            found.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(home)}")
    return found
