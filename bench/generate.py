"""Generation throughput: vLLM against Hugging Face ``generate`` at batch 1 and 32, side by side.

    python bench/generate.py --model-dir .rag/test-models/smollm2-135m-instruct --venv .venv-vllm \
        [--batches 1 32] [--new-tokens 64] [--device cpu|cuda]

The same chat prompts (a system prompt shared by all, as drafts share theirs, and a short study-specific
question) are answered greedily for ``--new-tokens`` tokens: by ``transformers`` ``generate`` on a padded
batch, and by a vLLM server (started here on 127.0.0.1, prefix caching on) receiving the batch as that
many concurrent requests. Prints generated tokens/s for each and the ratio vLLM / HF.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

SYSTEM = (
    "You draft echocardiography reports. Use only the numbered evidence; cite it; keep each section to one or "
    "two sentences; never state a grade the evidence does not support. " * 4
)
QUESTIONS = [
    f"Study {n}: LVEF about {40 + n % 25}%, mitral regurgitation grade {n % 4}. Write the impression."
    for n in range(64)
]


def _hf(model_dir: Path, prompts: list[list[dict[str, str]]], new_tokens: int, device: str) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True).to(device).eval()
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tok(texts, return_tensors="pt", padding=True).to(device)
    with torch.no_grad():
        t0 = time.perf_counter()
        out = model.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        seconds = time.perf_counter() - t0
    generated = (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
    return generated / seconds


async def _vllm(base_url: str, model: str, prompts: list[list[dict[str, str]]], new_tokens: int) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one(messages: list[dict[str, str]]) -> int:
            r = await client.post(
                "/chat/completions",
                json={
                    "model": model,
                    "messages": messages,
                    "max_tokens": new_tokens,
                    "min_tokens": new_tokens,
                    "temperature": 0.0,
                },
            )
            r.raise_for_status()
            return int(r.json()["usage"]["completion_tokens"])

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(m) for m in prompts))
        return sum(counts) / (time.perf_counter() - t0)


def main() -> None:
    from rag.llm.server import VLLMServer, parallel_args

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--venv", type=Path, default=Path(".venv-vllm"))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    prompts = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS]
    hf = {b: _hf(args.model_dir, prompts[:b], args.new_tokens, args.device) for b in args.batches}
    server = VLLMServer(
        args.model_dir,
        venv=args.venv,
        served_model_name="bench",
        max_model_len=2048,
        extra_args=parallel_args(prefix_caching=True),
        startup_timeout=600,
    )
    with server:
        asyncio.run(_vllm(server.base_url, "bench", prompts[:2], 8))  # warm-up
        vllm = {b: asyncio.run(_vllm(server.base_url, "bench", prompts[:b], args.new_tokens)) for b in args.batches}
    print(f"{args.new_tokens} new tokens per prompt, greedy; device {args.device}; model {args.model_dir.name}")
    print(f"{'batch':>6} {'HF tokens/s':>12} {'vLLM tokens/s':>14} {'vLLM / HF':>10}")
    for b in args.batches:
        print(f"{b:>6} {hf[b]:>12.1f} {vllm[b]:>14.1f} {vllm[b] / hf[b]:>9.2f}x")


if __name__ == "__main__":
    main()
