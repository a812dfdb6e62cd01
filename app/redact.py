"""Error texts for anonymous callers: no path of the machine.

Why: ``/readyz`` and the 503 of ``/v1`` say why no model is served, and the
reasons come from the file system (a missing ``CURRENT``, a checkpoint file
that does not match its checksum, an OS error naming a file). Paths tell an
attacker the layout of the host; the version and the file name are what an
operator needs, and the log keeps the whole text.
"""

from __future__ import annotations

import re
from pathlib import Path

# An absolute path: a '/' that does not follow a word character, a ':' or another '/' (so
# neither "redis://host/0" nor "a/b" is one), up to a quote, a space or a separator.
_ABSOLUTE = re.compile(r"(?<![\w:/.])/[^\s'\"(),;]+")


def without_paths(text: str | None, model_dir: Path) -> str | None:
    """``text`` with the model directory and any other absolute path taken out.

    A path inside the model directory keeps its part below it (``<version>/<file>``);
    the directory itself becomes "the model directory"; any other path, its last part.
    """
    if text is None:
        return None
    for root in {str(model_dir.resolve()), str(model_dir.absolute())}:  # (a relative name
        # tells nothing of the host, and would match words of the text)
        text = text.replace(root + "/", "")
        text = re.sub(re.escape(root) + r"(?![\w.-])", "the model directory", text)
    return _ABSOLUTE.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
