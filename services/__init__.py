"""Programs over the ``rag`` package: the HTTP service and page (``services.api``, ``services/web``) and
vLLM serving (``services/vllm``). They import ``rag``; ``rag`` never imports them."""
