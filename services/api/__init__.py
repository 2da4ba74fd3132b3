"""The HTTP service: similar cases, drafts and comparisons over a workspace (``create_app``, ``rag-api``)."""
