"""One module per on-disk format; each returns a ``Dataset``."""
