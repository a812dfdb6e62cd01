"""The package boundaries of the design are import-linter contracts (pyproject.toml); held here.

``app -> training.checkpoint -> models``: models imports neither the trainer nor
the service, the trainer never imports the service, the service reaches the
trainer only through ``training.checkpoint`` (and runs its commands as child
processes), and the serving process never loads the training stack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "4 kept" in done.stdout


def test_serving_imports_no_training_code() -> None:
    """What ``nextitem-server serve`` loads: no training module, no plotting, no compiler."""
    probe = (
        "import sys, app.cli, app.main; "
        "print(' '.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('training', 'matplotlib', 'numba', 'optuna', 'scipy'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) <= {"training", "training.checkpoint"}
