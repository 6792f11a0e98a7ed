"""PyTorch peer: all-MiniLM-L6-v2 sentence embeddings, batch 1, at 128 and 512 tokens.

sentence-transformers style: transformers' BertModel (sdpa attention, f32) on the token ids,
then mean pooling over the sequence and L2 normalisation, the same work as the agent's `encode`
workload (agent/src/backend/candle/bert.rs). The timed region holds the forward pass and the
pooling only; the ids are tokenized and made into tensors before any timing.

Prints one JSON document (see common.emit) on stdout.
"""

import common

MODEL = "minilm-l6"  # the model's name in specs/*.toml
FOLDER = "all-minilm-l6-v2"
CONTEXT_LENGTHS = (128, 512)
INPUT_STRIDE = 5  # input i starts at sentence i * 5, as in the agent's encode workload


def encoder_ids(tokenizer, sentences: list[str], start: int, n: int) -> list[int]:
    """Exactly `n` ids: the tokenizer's own special tokens ([CLS] … [SEP]) around real text."""
    frame = tokenizer.encode("", add_special_tokens=True).ids
    head, tail = frame[:1], frame[1:]
    body = common.text_tokens(lambda t: tokenizer.encode(t, add_special_tokens=False).ids, sentences, start, n - len(frame))
    ids = head + body + tail
    assert len(ids) == n, (len(ids), n)
    return ids


def load(folder):
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32, add_pooling_layer=False)
    return model.eval()


def embed(model, torch, inputs: dict):
    """Forward pass, mean pooling, L2 normalisation: (1, seq) ids → (1, 384) embedding."""
    hidden = model(**inputs).last_hidden_state
    pooled = hidden.mean(dim=1)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def measure(model, torch, tokenizer, sentences, n: int, runs: int) -> dict:
    batches = []
    for i in range(common.INPUTS_PER_FIGURE):
        ids = torch.tensor([encoder_ids(tokenizer, sentences, i * INPUT_STRIDE, n)], dtype=torch.long)
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)})
    with torch.inference_mode():
        samples = common.time_runs(lambda i: embed(model, torch, batches[i]), runs)
    prompts = [common.sha256_ids(b["input_ids"][0].tolist()) for b in batches]
    return common.figure(MODEL, "encode", n, samples, prompt_sha256=prompts)


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0])
    common.pin_threads(args.threads)
    import tokenizers
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # the checkpoint's unused pooler weights
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    folder = args.models / FOLDER
    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    model = load(folder)
    sentences = common.typo_sentences(args.repo)
    figures = []
    for n in CONTEXT_LENGTHS:
        f = measure(model, torch, tokenizer, sentences, n, args.runs)
        common.log(f"PyTorch MiniLM encode {n}: median {f['median_ms']:.1f} ms over {f['runs']} runs")
        figures.append(f)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "attention": model.config._attn_implementation}
    common.emit("pytorch", f"PyTorch {torch.__version__.split('+')[0]} sdpa", versions, torch.get_num_threads(), figures)


if __name__ == "__main__":
    main()
