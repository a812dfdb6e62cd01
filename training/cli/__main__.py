"""``python -m training.cli``: the ``nextitem`` command without its console script ."""

from training.cli import main

main()
