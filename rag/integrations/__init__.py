"""Adapters to other frameworks (optional extras): ``rag.integrations.langchain``."""
