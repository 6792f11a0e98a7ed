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

    python3 make-tiny-qwen3.py --gguf SRCDIR OUTDIR

Converts the model in SRCDIR (what the first form wrote) to GGUF variants of the same weights in
OUTDIR, as llama.cpp's convert_hf_to_gguf.py + llama-quantize --pure would: tiny-qwen3.f16.gguf,
tiny-qwen3.q8_0.gguf, tiny-qwen3.q4_1.gguf. Architecture `qwen3`, llama.cpp's tensor names, q/k
not permuted, tied embeddings (no `output.weight`), the tokenizer in the `tokenizer.ggml.*`
metadata (no tokenizer.json beside them), `general.file_type` set. Matrices are stored in the
variant's type (every row length is a multiple of 32, the Q8_0/Q4_1 block), the 1-D norm weights
in f32, as the converter keeps them. Pure Python (no numpy, no `gguf` package); byte-identical
when run again; does nothing when OUTDIR already holds the variants of these source files.
"""

import hashlib
import json
import math
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


# --- GGUF variants --------------------------------------------------------------------------

# Bump when the GGUF files change: older ones are written again.
GGUF_VERSION = "1"
GGUF_ALIGNMENT = 32
# ggml tensor types and llama.cpp's `general.file_type` (llama_ftype) of each variant.
GGML_F32, GGML_F16, GGML_Q4_1, GGML_Q8_0 = 0, 1, 3, 8
GGUF_VARIANTS = {"f16": (GGML_F16, 1), "q8_0": (GGML_Q8_0, 7), "q4_1": (GGML_Q4_1, 3)}
QK = 32  # elements per Q8_0 / Q4_1 block
# GGUF metadata value types.
GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
# llama.cpp's token types: normal, control (special added tokens), user-defined (other added ones).
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED = 1, 3, 4


def gguf_file_name(variant):
    return f"tiny-qwen3.{variant}.gguf"


def read_safetensors_f32(path):
    """name -> (shape, values) of a float32 safetensors file."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        values = struct.unpack_from(f"<{(end - start) // 4}f", data, 8 + n + start)
        out[name] = (tuple(info["shape"]), values)
    return out


def gguf_tensor_name(hf):
    """llama.cpp's name for a Qwen3 safetensors tensor."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if hf in fixed:
        return fixed[hf]
    layer, rest = hf[len("model.layers."):].split(".", 1)
    short = {
        "input_layernorm.weight": "attn_norm", "post_attention_layernorm.weight": "ffn_norm",
        "self_attn.q_proj.weight": "attn_q", "self_attn.k_proj.weight": "attn_k",
        "self_attn.v_proj.weight": "attn_v", "self_attn.o_proj.weight": "attn_output",
        "self_attn.q_norm.weight": "attn_q_norm", "self_attn.k_norm.weight": "attn_k_norm",
        "mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up", "mlp.down_proj.weight": "ffn_down",
    }[rest]
    return f"blk.{layer}.{short}.weight"


def f16(x):
    return struct.pack("<e", x)


def f32(x):
    """x rounded to float32, so the arithmetic below rounds as ggml's C code does."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def round_away(x):
    """C's roundf: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_q8_0(values):
    """ggml's quantize_row_q8_0_ref: per 32 values an f16 scale and 32 int8."""
    out = bytearray()
    for b in range(0, len(values), QK):
        block = values[b:b + QK]
        d = f32(max(abs(v) for v in block) / 127.0)
        inv = f32(1.0 / d) if d else 0.0
        out += f16(d) + struct.pack("<32b", *(round_away(f32(v * inv)) for v in block))
    return bytes(out)


def quantize_q4_1(values):
    """ggml's quantize_row_q4_1_ref: per 32 values an f16 scale and minimum, 32 nibbles (value j
    low, value j+16 high)."""
    out = bytearray()
    for b in range(0, len(values), QK):
        block = values[b:b + QK]
        lo, hi = min(block), max(block)
        d = f32(f32(hi - lo) / 15.0)
        inv = f32(1.0 / d) if d else 0.0
        q = [min(15, int(f32(f32(f32(v - lo) * inv) + 0.5))) for v in block]
        out += f16(d) + f16(lo) + bytes(q[j] | (q[j + 16] << 4) for j in range(QK // 2))
    return bytes(out)


def encode_tensor(shape, values, ggml_type):
    """(type, bytes) of a tensor in the variant's type: matrices in it, 1-D tensors in f32."""
    if len(shape) == 1:
        return GGML_F32, struct.pack(f"<{len(values)}f", *values)
    if ggml_type == GGML_F16:
        return GGML_F16, b"".join(f16(v) for v in values)
    if shape[-1] % QK != 0:  # llama.cpp falls back to f16 for rows that are not whole blocks
        return GGML_F16, b"".join(f16(v) for v in values)
    return ggml_type, (quantize_q8_0 if ggml_type == GGML_Q8_0 else quantize_q4_1)(values)


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(kind, value):
    """The bytes of one metadata value: (kind, value), arrays as (GGUF_ARRAY, (kind, [values]))."""
    if kind == GGUF_ARRAY:
        inner, items = value
        return struct.pack("<IQ", inner, len(items)) + b"".join(gguf_value(inner, v) for v in items)
    if kind == GGUF_STRING:
        return gguf_string(value)
    return struct.pack({GGUF_U32: "<I", GGUF_I32: "<i", GGUF_F32: "<f", GGUF_BOOL: "<?"}[kind], value)


def gguf_metadata(src, file_type):
    """(key, kind, value) as llama.cpp's converter writes them for Qwen3ForCausalLM."""
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    tok_cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tokens = {token_id: (text, TOKEN_NORMAL) for text, token_id in tok["model"]["vocab"].items()}
    for added in tok["added_tokens"]:
        tokens[added["id"]] = (added["content"], TOKEN_CONTROL if added["special"] else TOKEN_USER_DEFINED)
    if sorted(tokens) != list(range(len(tokens))):
        sys.exit(f"{src}/tokenizer.json: token ids are not 0..{len(tokens) - 1}")
    ids = {text: token_id for token_id, (text, _) in tokens.items()}
    merges = [m if isinstance(m, str) else f"{m[0]} {m[1]}" for m in tok["model"]["merges"]]
    u32 = lambda key: (GGUF_U32, int(cfg[key]))  # noqa: E731
    return [
        ("general.architecture", GGUF_STRING, "qwen3"),
        ("general.type", GGUF_STRING, "model"),
        ("general.name", GGUF_STRING, "tiny-qwen3"),
        ("general.file_type", GGUF_U32, file_type),
        ("general.quantization_version", GGUF_U32, 2),
        ("qwen3.block_count", *u32("num_hidden_layers")),
        ("qwen3.context_length", *u32("max_position_embeddings")),
        ("qwen3.embedding_length", *u32("hidden_size")),
        ("qwen3.feed_forward_length", *u32("intermediate_size")),
        ("qwen3.attention.head_count", *u32("num_attention_heads")),
        ("qwen3.attention.head_count_kv", *u32("num_key_value_heads")),
        ("qwen3.attention.key_length", *u32("head_dim")),
        ("qwen3.attention.value_length", *u32("head_dim")),
        ("qwen3.rope.freq_base", GGUF_F32, float(cfg["rope_theta"])),
        ("qwen3.attention.layer_norm_rms_epsilon", GGUF_F32, float(cfg["rms_norm_eps"])),
        ("tokenizer.ggml.model", GGUF_STRING, "gpt2"),
        ("tokenizer.ggml.pre", GGUF_STRING, "qwen2"),
        ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, [tokens[i][0] for i in range(len(tokens))])),
        ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, [tokens[i][1] for i in range(len(tokens))])),
        ("tokenizer.ggml.merges", GGUF_ARRAY, (GGUF_STRING, merges)),
        ("tokenizer.ggml.eos_token_id", GGUF_U32, ids[tok_cfg["eos_token"]]),
        ("tokenizer.ggml.padding_token_id", GGUF_U32, ids[tok_cfg["pad_token"]]),
        ("tokenizer.ggml.bos_token_id", GGUF_U32, int(cfg["bos_token_id"])),
        ("tokenizer.ggml.add_bos_token", GGUF_BOOL, bool(tok_cfg["add_bos_token"])),
        ("tokenizer.chat_template", GGUF_STRING, tok_cfg["chat_template"]),
    ]


def write_gguf(path, metadata, tensors, ggml_type):
    """A GGUF v3 file: header, metadata, tensor infos (dims innermost first), aligned data."""
    infos, blobs, offset = [], [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        kind, blob = encode_tensor(shape, values, ggml_type)
        infos.append(gguf_string(name) + struct.pack("<I", len(shape))
                     + b"".join(struct.pack("<Q", d) for d in reversed(shape)) + struct.pack("<IQ", kind, offset))
        blob += b"\0" * (-len(blob) % GGUF_ALIGNMENT)
        blobs.append(blob)
        offset += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    head += b"".join(gguf_string(k) + struct.pack("<I", kind) + gguf_value(kind, v) for k, kind, v in metadata)
    head += b"".join(infos)
    head += b"\0" * (-len(head) % GGUF_ALIGNMENT)
    with open(path, "wb") as f:
        f.write(head)
        for blob in blobs:
            f.write(blob)


def gguf_stamp(src):
    """What the variants are made from: this converter's version and the source files' digest."""
    h = hashlib.sha256()
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]:
        h.update(name.encode() + b"\0" + (src / name).read_bytes())
    return f"{GGUF_VERSION} {h.hexdigest()}\n"


def main_gguf(src, final):
    stamp = gguf_stamp(src)
    done = final / ".complete"
    if done.is_file() and done.read_text() == stamp and all((final / gguf_file_name(v)).is_file() for v in GGUF_VARIANTS):
        return
    tensors = {gguf_tensor_name(name): t for name, t in read_safetensors_f32(src / "model.safetensors").items()}
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for variant, (ggml_type, file_type) in GGUF_VARIANTS.items():
        write_gguf(tmp / gguf_file_name(variant), gguf_metadata(src, file_type), tensors, ggml_type)
    (tmp / ".complete").write_text(stamp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    print(f"wrote {final}", file=sys.stderr)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--gguf":
        return main_gguf(Path(sys.argv[2]), Path(sys.argv[3]))
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR | {sys.argv[0]} --gguf SRCDIR OUTDIR")
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
