"""Asserts what `agent bench .github/coreml/smoke.toml --format json` must show on a Mac: both
Core ML cells done with equal outputs, per-stage histograms, a placement, a peak footprint and
an energy figure. Reads the JSON document on stdin; exits 1 naming what is missing."""
import json
import sys

doc = json.load(sys.stdin)
cells = doc["cells"]
problems = []
units = sorted(f'{c["backend"]}:{c["unit"]}' for c in cells)
if units != ["coreml:all", "coreml:cpu"]:
    problems.append(f"cells ran on {units}, not coreml:cpu and coreml:all")
for c in cells:
    name = f'{c["backend"]}:{c["unit"]}'
    if c["state"] != "done":
        problems.append(f"{name}: {c['state']} ({c.get('error')})")
    if not c.get("stages"):
        problems.append(f"{name}: no stage histograms")
    if not c.get("placement"):
        problems.append(f"{name}: no placement")
    if not c.get("peak_memory_bytes"):
        problems.append(f"{name}: no peak footprint")
    if c.get("energy_j_per_inference") is None:
        problems.append(f"{name}: no energy")
texts = {tuple(o["text"] for o in c.get("outputs", [])) for c in cells}
if len(texts) != 1:
    problems.append(f"outputs differ across units: {texts}")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
