"""``python -m training.cli``: the ``nextitem`` command without its console script (torchrun, jobs)."""

from training.cli import main

main()
