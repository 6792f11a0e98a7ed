"""Prints the peer comparison of one bench/peers/out/<date>/ folder as Markdown.

Reads what run.sh wrote there: agent-info.json, torch.json, llama-cpp-python.json,
agent-candle.json and, when the agent has llamacpp:cpu, agent-llamacpp.json (the results JSON of
`agent bench`, whose cells carry latency.p50_ns: analysis/src/results/mod.rs).
"""

import argparse
import json
import re
import subprocess
from pathlib import Path

# (model, workload, context length, what the row measures)
ROWS = [
    ("minilm-l6", "encode", 128, "all-MiniLM-L6-v2 encode, batch 1, 128 tokens (ms)"),
    ("minilm-l6", "encode", 512, "all-MiniLM-L6-v2 encode, batch 1, 512 tokens (ms)"),
    ("smollm2-135m", "prefill", 128, "SmolLM2-135M Q4_1 prefill, 128 tokens (ms)"),
    ("smollm2-135m", "decode", 128, "SmolLM2-135M Q4_1 decode per token, context 128 (ms/token)"),
]
PEER_FILES = ("torch.json", "llama-cpp-python.json")


def load(path: Path):
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ms(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b is not None else "—"


class AgentSide:
    """One `agent bench` results document (or why there is none)."""

    def __init__(self, doc, missing_reason: str, why: str = ""):
        self.doc, self.missing_reason, self.notes = doc, missing_reason, []
        if doc is None and why:
            self.notes.append(why)

    def cell(self, backend: str, model: str, workload: str, ctx: int):
        if self.doc is None:
            return None
        for c in self.doc["cells"]:
            if (c["backend"], c["unit"], c["model"], c["workload"], c["context_length"], c["batch_size"]) == (backend, "cpu", model, workload, ctx, 1):
                return c
        return None

    def figure(self, backend: str, model: str, workload: str, ctx: int):
        """(median ms or None, the cell text)."""
        if self.doc is None:
            return None, f"n/a: {self.missing_reason}"
        c = self.cell(backend, model, workload, ctx)
        if c is None:
            skipped = [s for s in self.doc["run"].get("skipped", []) if model in s]
            return None, "n/a: " + (skipped[0] if skipped else "no such cell in the agent's results")
        if c["state"] != "done" or not c.get("latency"):
            return None, f"failed: {c.get('error') or c['state']}"
        value = c["latency"]["p50_ns"] / 1e6
        text = ms(value)
        if not c.get("valid", True):
            self.notes.append(f"\\* {backend}:cpu {model} {workload} {ctx}: not valid ({'; '.join(c.get('flags', []))})")
            text += "*"
        return value, text


def peer_figures(out: Path) -> list[tuple[dict, dict]]:
    """(peer document, figure) pairs of every peer that ran."""
    pairs = []
    for name in PEER_FILES:
        doc = load(out / name)
        for f in (doc or {}).get("figures", []):
            pairs.append((doc, f))
    return pairs


def best_peer(pairs, model, workload, ctx):
    found = [(f["median_ms"], doc) for doc, f in pairs if (f["model"], f["workload"], f["context_length"]) == (model, workload, ctx)]
    return min(found, key=lambda x: x[0]) if found else (None, None)


def peer_median(pairs, peer, model, workload, ctx):
    for doc, f in pairs:
        if doc["peer"] == peer and (f["model"], f["workload"], f["context_length"]) == (model, workload, ctx):
            return f["median_ms"]
    return None


def spread(pairs, sides) -> list[str]:
    """Per row, how many runs each median is of and how wide the runs spread."""
    lines = []
    for model, workload, ctx, what in ROWS:
        parts = []
        for backend, side in sides:
            c = side.cell(backend, model, workload, ctx)
            if c and c.get("latency"):
                lat = c["latency"]
                parts.append(
                    f"{backend}:cpu n={lat['count']} p50 {ms(lat['p50_ns'] / 1e6)} p90 {ms(lat['p90_ns'] / 1e6)}"
                    f"{'' if c.get('valid', True) else ' (not valid)'}"
                )
        for doc, f in pairs:
            if (f["model"], f["workload"], f["context_length"]) == (model, workload, ctx):
                parts.append(f"{doc['label']} n={f['runs']} median {ms(f['median_ms'])} p10–p90 {ms(f['p10_ms'])}–{ms(f['p90_ms'])}")
        lines.append(f"{what.split(' (')[0]}: " + "; ".join(parts))
    return lines


def same_inputs(pairs, sides) -> str:
    """Whether the peers fed the very token ids the agent did (its outputs' `prompt_sha256`; a
    `decode` cell keeps no outputs, but it builds its prompts as `prefill` does)."""
    agent = {}
    for _, side in sides:
        for c in (side.doc or {}).get("cells", []):
            for o in c.get("outputs", []):
                agent[(c["model"], c["context_length"], o["input_id"])] = o.get("prompt_sha256")
    same, differ = [], []
    for doc, f in pairs:
        for i, h in enumerate(f.get("prompt_sha256", [])):
            a = agent.get((f["model"], f["context_length"], i))
            if a is not None:
                (same if a == h else differ).append(f"{doc['label']} {f['model']} {f['workload']} {f['context_length']} input {i}")
    if differ:
        return f"token ids differ from the agent's: {', '.join(differ)} (same count; {len(same)} inputs identical)"
    if same:
        return f"identical token ids on both sides ({len(same)} peer inputs checked against the agent's prompt_sha256)"
    return "token counts equal by construction; ids not checked (no agent outputs)"


def machine(info: dict, threads: set) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo, re.M).group(1).split()) if "flags" in cpuinfo else set()
    simd = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("asimd", "NEON")) if flag in flags), "")
    cpu = f"{info['cpu_model']} ({info['arch']}{', ' + simd if simd else ''}), {info['cpu_cores']} cores, {info['memory_bytes'] / 2**30:.0f} GiB"
    t = ", ".join(str(x) for x in sorted(threads))
    return f"{cpu}; {info['os_version']}; threads on every side: {t}"


def load_note(out: Path) -> str:
    path = out / "loadavg-start"
    if not path.exists():
        return ""
    load = float(path.read_text().split()[0])
    busy = " (something else was running: noisy figures)" if load > 0.5 else ""
    return f"; load average at the start {load:.2f}{busy}"


def versions(pairs, repo: Path) -> str:
    seen, parts = set(), []
    for doc, _ in pairs:
        if doc["peer"] in seen:
            continue
        seen.add(doc["peer"])
        v = doc["versions"]
        if doc["peer"] == "pytorch":
            parts.append(f"torch {v['torch']}, transformers {v['transformers']} ({v['attention']} attention, f32)")
        else:
            parts.append(f"llama-cpp-python {v['llama-cpp-python']} (n_ctx {v['n_ctx']}, n_batch {v['n_batch']}; {v['system_info']})")
    try:
        rev = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True).stdout.strip()
        parts.insert(0, f"anefleet {rev}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return "; ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--command", default="bench/peers/run.sh")
    p.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2], help="the anefleet checkout")
    args = p.parse_args()
    out = args.out
    info = load(out / "agent-info.json")
    units = info.get("units", [])
    candle = AgentSide(load(out / "agent-candle.json"), "agent bench produced no results (see its stderr)")
    if "llamacpp:cpu" not in units:
        llamacpp = AgentSide(
            load(out / "agent-llamacpp.json"),
            "agent has no llamacpp:cpu",
            f"llamacpp:cpu n/a: `agent info` lists the units {', '.join(units) or '(none)'}; this agent was built without the llamacpp backend",
        )
    else:
        llamacpp = AgentSide(load(out / "agent-llamacpp.json"), "agent bench produced no results (see its stderr)")
    pairs = peer_figures(out)

    lines = [
        "| workload | candle:cpu | llamacpp:cpu | best peer (which) | candle/peer | llamacpp/llama-cpp-python |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for model, workload, ctx, what in ROWS:
        c_val, c_text = candle.figure("candle", model, workload, ctx)
        if model == "minilm-l6":
            l_val, l_text = None, "—"  # llama.cpp runs the decoder rows only (no BERT GGUF here)
        else:
            l_val, l_text = llamacpp.figure("llamacpp", model, workload, ctx)
        b_val, b_doc = best_peer(pairs, model, workload, ctx)
        b_text = f"{ms(b_val)} ({b_doc['label']})" if b_val is not None else "n/a: the peer did not run"
        lcp = peer_median(pairs, "llama-cpp-python", model, workload, ctx)
        l_ratio = ratio(l_val, lcp) if model != "minilm-l6" else "—"
        lines.append(f"| {what} | {c_text} | {l_text} | {b_text} | {ratio(c_val, b_val)} | {l_ratio} |")

    threads = {d["threads"] for d, _ in pairs}
    for side in (candle, llamacpp):
        threads |= {c["threads"] for c in (side.doc or {}).get("cells", []) if c.get("threads")}
    print("\n".join(lines))
    print()
    print("Medians (agent: p50 of the cell's latency histogram over every measured iteration; peers: median of")
    print("the timed runs). Ratios are anefleet / peer: above 1, anefleet is slower.")
    print()
    for note in candle.notes + llamacpp.notes:
        print(f"- {note}")
    print()
    print("Spread:")
    print()
    for line in spread(pairs, (("candle", candle), ("llamacpp", llamacpp))):
        print(f"- {line}")
    print()
    print(f"- Inputs: {same_inputs(pairs, (('candle', candle), ('llamacpp', llamacpp)))}")
    print(f"- Command: `{args.command}`")
    print(f"- Machine: {machine(info, threads)}{load_note(out)}")
    print(f"- Versions: {versions(pairs, args.repo)}")
    print(f"- Raw results: {out}")


if __name__ == "__main__":
    main()
