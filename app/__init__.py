"""The online service (FastAPI): sessions in Redis, FAISS retrieval, model hot swap."""
