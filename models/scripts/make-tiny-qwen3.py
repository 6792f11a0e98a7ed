#!/usr/bin/env python3
"""Generates a small Qwen3-architecture model, deterministically, into OUTDIR.

    python3 make-tiny-qwen3.py OUTDIR

Writes config.json, generation_config.json, model.safetensors (float32, random weights),
tokenizer.json (byte-level BPE trained on the built-in typo-correction data, Qwen2-style
pre-tokenizer) and tokenizer_config.json (ChatML template). The model loads with
candle_transformers::models::qwen3 and the Hugging Face `tokenizers` library; it exists to run
Qwen3's code path in tests, and its output is meaningless.

Running it twice gives byte-identical files. Weights come from Python's own seeded Mersenne
Twister and are written with the safetensors layout directly, so the only third-party package is
`tokenizers`, pinned, installed on first use into a private folder (never into your environment).
"""

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

# BPE training must be single-threaded and free of parallel non-determinism.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

TOKENIZERS_VERSION = "0.22.1"  # cp39-abi3 wheels: any CPython >= 3.9
SEED = 20250521
VOCAB_SIZE = 2000
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2/Qwen3's pre-tokenizer pattern.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# ChatML, as in Qwen's tokenizer_config.json: the `\n` are Jinja escapes, not newlines.
CHAT_TEMPLATE = (
    r"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    r" + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    r"{{ '<|im_start|>assistant\n' }}{% endif %}"
)
INSTRUCTION = "Correct the typos in the following text. Reply with the corrected text only.\n\n"

HIDDEN = 64
INTERMEDIATE = 128
LAYERS = 2
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 16
EMBEDDING_STD = 0.02

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "typo-correction.jsonl"


def import_tokenizers():
    """Imports the pinned `tokenizers`, installing it into a private folder if needed."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    target = cache / "anefleet" / "pydeps" / f"tokenizers-{TOKENIZERS_VERSION}"
    if not (target / "tokenizers").is_dir():
        print(f"installing tokenizers=={TOKENIZERS_VERSION} into {target}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--target", str(target), f"tokenizers=={TOKENIZERS_VERSION}"],
            check=True,
        )
    sys.path.insert(0, str(target))
    import tokenizers

    if tokenizers.__version__ != TOKENIZERS_VERSION:
        sys.exit(f"expected tokenizers {TOKENIZERS_VERSION}, imported {tokenizers.__version__}")
    return tokenizers


def training_texts():
    """The built-in data set's sentences, plus the prompt's fixed text."""
    texts = [INSTRUCTION, "system", "user", "assistant"]
    with open(DATA, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                pair = json.loads(line)
                texts += [pair["input"], pair["reference"]]
    return texts


def build_tokenizer(tk):
    """A byte-level BPE with Qwen's pre-tokenizer, trained on the typo data."""
    tok = tk.Tokenizer(tk.models.BPE())
    tok.normalizer = tk.normalizers.NFC()
    tok.pre_tokenizer = tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Split(tk.Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = tk.decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = tk.processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = tk.trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(training_texts(), trainer=trainer)
    tok.add_special_tokens([tk.AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def layer_tensor_shapes():
    """The tensors of one decoder layer that candle's qwen3 model reads, with their shapes."""
    return {
        "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
        "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
        "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
        "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
        "self_attn.q_norm.weight": (HEAD_DIM,),
        "self_attn.k_norm.weight": (HEAD_DIM,),
        "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
        "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
        "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
        "input_layernorm.weight": (HIDDEN,),
        "post_attention_layernorm.weight": (HIDDEN,),
    }


def weight_scale(name, shape):
    """Half-width of the uniform distribution a tensor is drawn from: norms are 1 (scale 0),
    embeddings have std EMBEDDING_STD, projections std 1/sqrt(fan_in) so context matters."""
    if name.endswith("norm.weight"):
        return 0.0
    std = EMBEDDING_STD if "embed_tokens" in name else shape[-1] ** -0.5
    return std * 3.0 ** 0.5


def weights(vocab_size):
    """name -> (shape, values), from one seeded generator in name order."""
    names = {"model.embed_tokens.weight": (vocab_size, HIDDEN), "model.norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        for name, shape in layer_tensor_shapes().items():
            names[f"model.layers.{i}.{name}"] = shape
    rng = random.Random(SEED)
    out = {}
    for name in sorted(names):
        shape = names[name]
        count = 1
        for d in shape:
            count *= d
        scale = weight_scale(name, shape)
        if scale == 0.0:
            values = [1.0] * count
        else:
            values = [(rng.random() * 2.0 - 1.0) * scale for _ in range(count)]
        out[name] = (shape, values)
    return out


def write_safetensors(path, tensors):
    """Writes float32 tensors in the safetensors format (header padded to 8 bytes)."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def config(vocab_size, bos, eos):
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 2048,
        "max_window_layers": LAYERS,
        "model_type": "qwen3",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab_size,
    }


def tokenizer_config(ids):
    added = {
        str(ids[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True}
        for t in SPECIAL_TOKENS
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 2048,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def generation_config(ids):
    return {
        "bos_token_id": ids["<|endoftext|>"],
        "do_sample": False,
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
    }


def generate(out):
    tk = import_tokenizers()
    tok = build_tokenizer(tk)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    tok.save(str(out / "tokenizer.json"), pretty=True)
    write_json(out / "tokenizer_config.json", tokenizer_config(ids))
    write_json(out / "config.json", config(vocab_size, ids["<|endoftext|>"], ids["<|im_end|>"]))
    write_json(out / "generation_config.json", generation_config(ids))
    write_safetensors(out / "model.safetensors", weights(vocab_size))


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    final = Path(sys.argv[1])
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    generate(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    print(f"wrote {final}", file=sys.stderr)


if __name__ == "__main__":
    main()
