"""Where datasets are read from and where derived files go.

Datasets are always read in place. ``NEXTITEM_DATA_DIR`` wins; otherwise a
``shared/data`` folder beside the checkout (how the team's machines and CI are
laid out), otherwise ``./data``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    env = os.environ.get("NEXTITEM_DATA_DIR")
    if env:
        return Path(env).expanduser()
    beside = REPO_ROOT.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    return Path.cwd() / "data"
