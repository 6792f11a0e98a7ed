"""What both Python peers share: arguments, thread settings, real input text, timing, output.

Inputs follow the agent (agent/src/workload/prompt.rs): real typo'd sentences from
models/data/typo-correction.jsonl joined by spaces and tokenized at once by the model's own
tokenizer, cut to exactly the asked token count. Like the agent, a figure cycles through
INPUTS_PER_FIGURE different inputs, each starting at a different sentence.
"""

import argparse
import hashlib
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path

INPUTS_PER_FIGURE = 4  # the agent's INPUTS_PER_CELL
WARMUP = 3


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, required=True, help="inference threads")
    p.add_argument("--runs", type=int, default=20, help="timed runs per figure")
    p.add_argument("--models", type=Path, required=True, help="the test-model folder")
    p.add_argument("--repo", type=Path, required=True, help="the anefleet checkout (for the data set)")
    return p.parse_args()


def pin_threads(n: int) -> None:
    """Thread pools read these when they start: call before importing torch or llama_cpp."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


def typo_sentences(repo: Path) -> list[str]:
    """The typo'd inputs of the data set the agent's built-in `builtin:typo` compiles in."""
    path = repo / "models" / "data" / "typo-correction.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["input"] for line in f if line.strip()]


def text_tokens(tokenize, sentences: list[str], start: int, n: int) -> list[int]:
    """The first `n` token ids of real text: sentences from `start` on (wrapping), joined by
    spaces and tokenized as one text, so word boundaries are the model's own."""
    text, i = "", start
    target_chars = n * 4 + 16  # English runs about four characters a token: start there, double
    while True:
        while len(text) < target_chars:
            text = (text + " " if text else "") + sentences[i % len(sentences)]
            i += 1
        ids = tokenize(text)
        if len(ids) >= n:
            return ids[:n]
        target_chars *= 2


def time_runs(run, runs: int, before=None, warmup: int = WARMUP) -> list[float]:
    """Milliseconds of `run(i)` for i in 0..runs, after `warmup` untimed calls; `before(i)` is
    untimed preparation (e.g. clearing the KV cache)."""
    samples = []
    for i in range(-warmup, runs):
        j = i % INPUTS_PER_FIGURE
        if before is not None:
            before(j)
        t0 = time.perf_counter_ns()
        run(j)
        dt = time.perf_counter_ns() - t0
        if i >= 0:
            samples.append(dt / 1e6)
    return samples


def sha256_ids(ids: list[int]) -> str:
    """sha256 hex of u32 little-endian ids: the agent's `prompt_sha256` of an output."""
    return hashlib.sha256(struct.pack(f"<{len(ids)}I", *ids)).hexdigest()


def figure(model: str, workload: str, context_length: int, samples_ms: list[float], **extra) -> dict:
    """One measured figure, keyed like an agent cell (model, workload, context length, batch 1)."""
    s = sorted(samples_ms)
    q = statistics.quantiles(s, n=10) if len(s) >= 2 else [s[0]] * 9
    return {
        "model": model,
        "workload": workload,
        "context_length": context_length,
        "batch_size": 1,
        "runs": len(s),
        "median_ms": statistics.median(s),
        "p10_ms": q[0],
        "p90_ms": q[-1],
        "min_ms": s[0],
        "max_ms": s[-1],
        **extra,
    }


def emit(peer: str, label: str, versions: dict, threads: int, figures: list[dict]) -> None:
    json.dump({"peer": peer, "label": label, "versions": versions, "threads": threads, "figures": figures}, sys.stdout, indent=1)
    sys.stdout.write("\n")


def log(msg: str) -> None:
    print(f"   {msg}", file=sys.stderr, flush=True)
