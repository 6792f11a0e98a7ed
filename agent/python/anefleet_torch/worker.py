"""The `torch` backend's worker: PyTorch (and Hugging Face transformers) behind a pipe.

The agent starts one worker per cell with the Python it was pointed at and speaks a small
protocol over the worker's stdin/stdout. A request is a frame: 4 bytes little-endian length, then
that many bytes of JSON. A reply is a JSON frame followed by a binary frame (little-endian f32
values: logits or embeddings; empty when there are none). The harness stays in the agent: it
chooses the token ids, the iterations and what is recorded. The worker times each call
itself (`perf_counter_ns`): the inputs onto the device, the model call, the outputs back on the
host (which waits for the device), as the in-process backends are timed; it returns the
nanoseconds with each reply.

Requests (every reply has "ok"; on failure "error" says what went wrong):
  {"op": "probe", "device": D}             torch/transformers versions; a 64x64 matmul on D checked
  {"op": "load", "path": P, "kind": "encoder"|"decoder", "device": D, "threads": N}
  {"op": "encode", "batch": [[ids]]}       mean-pooled, L2-normalised embeddings; ns
  {"op": "forward", "tokens": [ids], "pos": P}  logits of the last position; ns (pos 0: new sequence)
  {"op": "clear"}                          forgets the KV cache
  {"op": "noop"}                           nothing, through the same path (the pipe's own cost)
"""

import json
import struct
import sys
import time


def read_frame(stream):
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return body


def write_reply(out, reply, payload=b""):
    body = json.dumps(reply).encode()
    out.write(struct.pack("<I", len(body)) + body + struct.pack("<I", len(payload)) + payload)
    out.flush()


class Worker:
    def __init__(self):
        self.torch = None
        self.model = None
        self.kind = None
        self.device = None
        self.past = None

    def imports(self):
        if self.torch is None:
            import torch  # noqa: PLC0415 (imported on first use: `probe` reports a missing torch)
            import transformers  # noqa: F401, PLC0415

            self.torch = torch
        return self.torch

    def sync(self):
        torch = self.torch
        if self.device == "mps":
            torch.mps.synchronize()
        elif self.device == "cuda":
            torch.cuda.synchronize()

    def probe(self, req):
        torch = self.imports()
        import transformers  # noqa: PLC0415

        device = req.get("device", "cpu")
        available = device == "cpu" or (device == "mps" and torch.backends.mps.is_available()) or (
            device == "cuda" and torch.cuda.is_available()
        )
        right = False
        if available:
            a = torch.arange(64 * 64, dtype=torch.float32).reshape(64, 64) / 4096.0
            b = torch.eye(64, dtype=torch.float32) * 2.0
            got = (a.to(device) @ b.to(device)).cpu()
            right = bool(torch.allclose(got, a * 2.0))
        return {"ok": True, "torch": torch.__version__, "transformers": transformers.__version__, "works": right}, b""

    def load(self, req):
        torch = self.imports()
        from transformers import AutoModel, AutoModelForCausalLM  # noqa: PLC0415

        torch.set_num_threads(int(req.get("threads", 1)))
        self.device, self.kind = req["device"], req["kind"]
        start = time.perf_counter_ns()
        cls = AutoModelForCausalLM if self.kind == "decoder" else AutoModel
        model = cls.from_pretrained(req["path"], torch_dtype=torch.float32, local_files_only=True)
        self.model = model.to(self.device).eval()
        self.sync()
        return {"ok": True, "load_ns": time.perf_counter_ns() - start}, b""

    def encode(self, req):
        torch = self.torch
        ids = torch.tensor(req["batch"], dtype=torch.long)
        with torch.inference_mode():
            self.sync()
            # Timed as every backend is: the inputs onto the device, the call, the result back.
            start = time.perf_counter_ns()
            on_device = ids.to(self.device)
            mask = torch.ones_like(on_device)
            hidden = self.model(input_ids=on_device, attention_mask=mask).last_hidden_state
            pooled = torch.nn.functional.normalize(hidden.mean(dim=1), p=2, dim=1)
            out = pooled.to(torch.float32).cpu()
            ns = time.perf_counter_ns() - start
        out = out.contiguous()
        return {"ok": True, "ns": ns, "rows": out.shape[0], "cols": out.shape[1]}, out.numpy().tobytes()

    def forward(self, req):
        torch = self.torch
        if req["pos"] == 0:
            self.past = None
        ids = torch.tensor([req["tokens"]], dtype=torch.long)
        with torch.inference_mode():
            self.sync()
            start = time.perf_counter_ns()
            out = self.model(input_ids=ids.to(self.device), past_key_values=self.past, use_cache=True)
            values = out.logits[0, -1].to(torch.float32).cpu()
            ns = time.perf_counter_ns() - start
        self.past = out.past_key_values
        values = values.contiguous()
        return {"ok": True, "ns": ns, "vocab": values.shape[0]}, values.numpy().tobytes()

    def clear(self, _req):
        self.past = None
        return {"ok": True}, b""

    def noop(self, _req):
        return {"ok": True, "ns": 0}, b""


def main():
    import os

    stdin = sys.stdin.buffer
    # The protocol gets a descriptor of its own; descriptor 1 (what Python and native libraries
    # print to) goes to stderr, so nothing else can write into the frames.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker()
    ops = {"probe": worker.probe, "load": worker.load, "encode": worker.encode, "forward": worker.forward,
           "clear": worker.clear, "noop": worker.noop}
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return
        try:
            req = json.loads(frame)
            op = ops.get(req.get("op"))
            if op is None:
                write_reply(stdout, {"ok": False, "error": f"unknown op {req.get('op')!r}"})
                continue
            reply, payload = op(req)
        except ImportError as e:
            reply, payload = {"ok": False, "error": f"cannot import {e.name or e}: {e}", "missing": e.name or ""}, b""
        except Exception as e:  # noqa: BLE001 (every failure goes back to the agent, named)
            reply, payload = {"ok": False, "error": f"{type(e).__name__}: {e}"}, b""
        write_reply(stdout, reply, payload)


if __name__ == "__main__":
    main()
