"""The algorithms as pure code: no files, no network, no Redis."""
