#!/usr/bin/env python3
"""Small real Core ML models for the tests of `agent inspect` and of the anemll input planning.

Usage: make-coreml-fixtures.py DEST

Writes into DEST (every file a few KB, deterministic weights):
  plain.mlpackage           ML program, one linear layer, macOS 13 / iOS 16 target (specification 7)
  stateful.mlpackage        ML program with an MLState accumulator, macOS 15 / iOS 18 (specification 9)
  multifunction.mlpackage   functions `prefill` (8 tokens) and `infer` (1 token), default `infer` (specification 9)
  ranged.mlpackage          an input whose sequence length ranges from 1 to 64 (macOS 14 / iOS 17, specification 8)
  anemll/                   an anemll-shaped split model at a tiny size, laid out as anemll's converter
                            lays it out: meta.yaml, qwen_embeddings, qwen_FFN_PF_chunk_01of02 and
                            _02of02 (functions `prefill` and `infer`, one shared KV-cache state),
                            qwen_lm_head (logits1..4), tokenizer.json
  anemll-chunks1/           the same model (same weights) converted with one FFN chunk holding both
                            attention layers: qwen_FFN_PF_chunk_01of01 (meta.yaml num_chunks: 1)
  anemll-chat-loop.json     the inputs anemll's chat loop (tests/chat.py: run_prefill, generate_next_token)
                            builds for a 13-token prompt and 4 generated tokens on the fixture's shapes,
                            computed here the way that code computes them, to check the agent's planning
  compiled/qwen_FFN_PF_chunk_01of02.mlmodelc
                            the first chunk in the layout of a compiled model (metadata.json and the
                            function signatures of model.mil, written from the chunk's specification
                            the way Apple's compiler writes them; compiling needs macOS)

Every `.mlpackage` is saved by coremltools itself from a MIL program (Manifest.json,
Data/com.apple.CoreML/model.mlmodel, weights/weight.bin). The chunks compute a real one-head
attention over their KV cache, so a Mac runs them with the same inputs anemll's chat loop feeds.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import coremltools as ct
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import get_new_symbol, types

# The anemll fixture's dimensions: vocabulary, hidden size, context, prefill batch, chunks, lm_head
# splits, attention layers (split evenly across the chunks; one KV-cache state holds them all).
VOCAB, HIDDEN, CONTEXT, BATCH, CHUNKS, SPLITS, LAYERS = 32, 16, 32, 8, 2, 4, 2
PREFIX = "qwen"
STATE = "model_model_kv_cache_0"
RNG = np.random.default_rng(20260)


def weights(*shape):
    return (RNG.standard_normal(shape) * 0.2).astype(np.float32)


def convert(prog, target):
    return ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target, skip_model_load=True)


def plain(dest):
    w, b = weights(3, 4), weights(3)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4), dtype=types.fp32)], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.linear(x=x, weight=w, bias=b, name="y")

    model = convert(prog, ct.target.macOS13)
    model.short_description = "anefleet fixture: one linear layer"
    model.save(str(dest / "plain.mlpackage"))


def stateful(dest):
    @mb.program(
        input_specs=[mb.TensorSpec(shape=(1, 4), dtype=types.fp16), mb.StateTensorSpec(shape=(1, 4), dtype=types.fp16)],
        opset_version=ct.target.iOS18,
    )
    def prog(x, accumulator):
        total = mb.add(x=mb.read_state(input=accumulator), y=x)
        mb.coreml_update_state(state=accumulator, value=total)
        return mb.identity(x=total, name="total")

    convert(prog, ct.target.iOS18).save(str(dest / "stateful.mlpackage"))


def ranged(dest):
    table = weights(16, 4)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, get_new_symbol()), dtype=types.int32)], opset_version=ct.target.iOS17)
    def prog(ids):
        return mb.gather(x=table, indices=ids, axis=0, name="embedded")

    model = ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS14,
        inputs=[ct.TensorType(name="ids", shape=(1, ct.RangeDim(lower_bound=1, upper_bound=64, default=4)), dtype=np.int32)],
        skip_model_load=True,
    )
    model.save(str(dest / "ranged.mlpackage"))


def multifunction(dest, work):
    w = weights(3, 4)
    for name, tokens in (("prefill", 8), ("infer", 1)):

        @mb.program(input_specs=[mb.TensorSpec(shape=(1, tokens, 4), dtype=types.fp16)], opset_version=ct.target.iOS18)
        def prog(x):
            return mb.linear(x=x, weight=w.astype(np.float16), name="y")

        convert(prog, ct.target.iOS18).save(str(work / f"mf_{name}.mlpackage"))
    merge({"prefill": work / "mf_prefill.mlpackage", "infer": work / "mf_infer.mlpackage"}, dest / "multifunction.mlpackage", "infer")


def merge(functions, out, default):
    desc = ct.utils.MultiFunctionDescriptor()
    for name, path in functions.items():
        desc.add_function(str(path), src_function_name="main", target_function_name=name)
    desc.default_function_name = default
    ct.utils.save_multifunction(desc, str(out))


def anemll_metadata(part, chunks=CHUNKS):
    """The user-defined metadata anemll's converter writes and its chat loop reads."""
    return {
        "com.anemll.context_length": str(CONTEXT),
        "com.anemll.state_length": str(CONTEXT),
        "com.anemll.batch_size": str(BATCH),
        "com.anemll.lut_bits": "0",
        "com.anemll.num_chunks": str(chunks),
        "com.anemll.info": f"anefleet fixture: tiny anemll-shaped {part}",
    }


def embeddings(dest, table, chunks):
    tokens = get_new_symbol()  # 1 for infer, BATCH for prefill

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, tokens), dtype=types.int32)], opset_version=ct.target.iOS18)
    def prog(input_ids):
        return mb.gather(x=table, indices=input_ids, axis=0, name="hidden_states")

    shapes = ct.EnumeratedShapes(shapes=[[1, 1], [1, BATCH]], default=[1, 1])
    model = ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS18,
        inputs=[ct.TensorType(name="input_ids", shape=shapes, dtype=np.int32)],
        skip_model_load=True,
    )
    model.user_defined_metadata.update(anemll_metadata("embeddings", chunks))
    model.save(str(dest / f"{PREFIX}_embeddings.mlpackage"))


def attend(hidden, cache, row, onehot):
    """Writes this chunk's key/value rows of the cache at the one-hot positions, attends over them."""
    k = mb.linear(x=mb.squeeze(x=hidden, axes=[0]), weight=row["wk"])  # [T, H]
    v = mb.linear(x=mb.squeeze(x=hidden, axes=[0]), weight=row["wv"])
    keep = mb.sub(x=np.float16(1), y=mb.reduce_sum(x=onehot, axes=[1], keep_dims=True))  # [C, 1]
    i = row["index"]
    old_k = mb.squeeze(x=mb.slice_by_index(x=cache, begin=[2 * i, 0, 0], end=[2 * i + 1, CONTEXT, HIDDEN]), axes=[0])
    old_v = mb.squeeze(x=mb.slice_by_index(x=cache, begin=[2 * i + 1, 0, 0], end=[2 * i + 2, CONTEXT, HIDDEN]), axes=[0])
    new_k = mb.add(x=mb.mul(x=old_k, y=keep), y=mb.matmul(x=onehot, y=k))  # [C, H]
    new_v = mb.add(x=mb.mul(x=old_v, y=keep), y=mb.matmul(x=onehot, y=v))
    stacked = mb.stack(values=[new_k, new_v], axis=0)
    before = mb.slice_by_index(x=cache, begin=[0, 0, 0], end=[2 * i, CONTEXT, HIDDEN])
    after = mb.slice_by_index(x=cache, begin=[2 * i + 2, 0, 0], end=[2 * LAYERS, CONTEXT, HIDDEN])
    parts = [p for p, n in ((before, 2 * i), (stacked, 2), (after, 2 * LAYERS - 2 * i - 2)) if n > 0]
    return new_k, new_v, mb.concat(values=parts, axis=0)


def chunk_function(dest_path, rows, tokens):
    """`prefill` (tokens = BATCH) or `infer` (tokens = 1) of one FFN chunk (its layers `rows`), as
    anemll's inputs name them."""
    specs = [
        mb.TensorSpec(shape=(1, tokens, HIDDEN), dtype=types.fp16),  # hidden_states
        mb.TensorSpec(shape=(tokens,), dtype=types.int32),  # position_ids
        mb.TensorSpec(shape=(1, 1, tokens, CONTEXT), dtype=types.fp16),  # causal_mask
        mb.TensorSpec(shape=(1,), dtype=types.int32),  # current_pos
    ]
    if tokens == 1:
        specs.append(mb.TensorSpec(shape=(1, 1, CONTEXT, 1), dtype=types.fp16))  # update_mask
    specs.append(mb.StateTensorSpec(shape=(2 * LAYERS, CONTEXT, HIDDEN), dtype=types.fp16))
    positions = np.arange(CONTEXT, dtype=np.int32).reshape(CONTEXT, 1)

    def body(hidden_states, position_ids, causal_mask, current_pos, state, update_mask=None):
        cache = mb.read_state(input=state)
        if update_mask is None:  # prefill: one-hot of the batch's positions
            hit = mb.equal(x=positions, y=mb.expand_dims(x=position_ids, axes=[0]))
        else:  # infer: the row anemll's update_mask marks
            hit = mb.equal(x=mb.reshape(x=update_mask, shape=[CONTEXT, 1]), y=np.float16(1))
        onehot = mb.cast(x=hit, dtype="fp16")  # [C, tokens]
        for row in rows:
            new_k, new_v, cache = attend(hidden_states, cache, row, onehot)
            scores = mb.matmul(x=mb.squeeze(x=hidden_states, axes=[0]), y=new_k, transpose_y=True)  # [tokens, C]
            scores = mb.add(x=scores, y=mb.reshape(x=causal_mask, shape=[tokens, CONTEXT]))
            # current_pos (where the call starts) is an input as in anemll; the position ids carry the same here.
            attn = mb.matmul(x=mb.softmax(x=scores, axis=-1), y=new_v)  # [tokens, H]
            hidden_states = mb.add(x=hidden_states, y=mb.expand_dims(x=attn, axes=[0]))
        mb.coreml_update_state(state=state, value=cache)
        return mb.identity(x=hidden_states, name="output_hidden_states")

    if tokens == 1:

        @mb.program(input_specs=specs, opset_version=ct.target.iOS18)
        def prog(hidden_states, position_ids, causal_mask, current_pos, update_mask, model_model_kv_cache_0):
            return body(hidden_states, position_ids, causal_mask, current_pos, model_model_kv_cache_0, update_mask)

    else:

        @mb.program(input_specs=specs, opset_version=ct.target.iOS18)
        def prog(hidden_states, position_ids, causal_mask, current_pos, model_model_kv_cache_0):
            return body(hidden_states, position_ids, causal_mask, current_pos, model_model_kv_cache_0)

    convert(prog, ct.target.iOS18).save(str(dest_path))


def chunks(dest, work, layers, n):
    per = LAYERS // n
    for i in range(n):
        name = f"{PREFIX}_FFN_PF_chunk_{i + 1:02d}of{n:02d}"
        for fn, tokens in (("prefill", BATCH), ("infer", 1)):
            chunk_function(work / f"{name}_{fn}.mlpackage", layers[i * per:(i + 1) * per], tokens)
        out = dest / f"{name}.mlpackage"
        merge({"prefill": work / f"{name}_prefill.mlpackage", "infer": work / f"{name}_infer.mlpackage"}, out, "infer")
        set_metadata(out, anemll_metadata(f"FFN chunk {i + 1} of {n}", n))


def set_metadata(package, metadata):
    """save_multifunction keeps no user metadata: write it into the package's specification."""
    spec_path = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec = ct.utils.load_spec(str(package))
    for k, v in metadata.items():
        spec.description.metadata.userDefined[k] = v
    spec_path.write_bytes(spec.SerializeToString())


def lm_head(dest, parts, chunks):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, HIDDEN), dtype=types.fp16)], opset_version=ct.target.iOS18)
    def prog(hidden_states):
        return tuple(mb.linear(x=hidden_states, weight=w, name=f"logits{i + 1}") for i, w in enumerate(parts))

    model = convert(prog, ct.target.iOS18)
    model.user_defined_metadata.update(anemll_metadata("lm_head", chunks))
    model.save(str(dest / f"{PREFIX}_lm_head.mlpackage"))


WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "correct", "typos", "in", "this",
         "text", "teh", "qiuck", "borwn", "fxo", "jmups", "ovr", "lzay", "dgo", ":", ".", ",", "a", "is"]


def tokenizer(dest):
    """A word-level tokenizer in the Hugging Face `tokenizers` format, VOCAB ids."""
    special = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "\n"]
    vocab = {t: i for i, t in enumerate(special + WORDS)}
    assert len(vocab) == VOCAB, len(vocab)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
             for i, t in enumerate(special[:5])]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }
    (dest / "tokenizer.json").write_text(json.dumps(tok, indent=1) + "\n")
    config = {"eos_token": "<|im_end|>", "pad_token": "<pad>", "bos_token": None, "model_max_length": CONTEXT}
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")


def meta_yaml(dest, chunks):
    """meta.yaml as anemll's generate_meta_yaml.py writes it."""
    (dest / "meta.yaml").write_text(f"""model_info:
  name: anemll-tiny-anefleet-fixture-ctx{CONTEXT}
  version: 0.3.4
  description: |
    Tiny anemll-shaped split model for anefleet's tests
    Context length: {CONTEXT}
    Batch size: {BATCH}
    Chunks: {chunks}
  license: MIT
  author: anefleet
  framework: Core ML
  language: Python
  architecture: qwen3
  parameters:
    context_length: {CONTEXT}
    batch_size: {BATCH}
    lut_embeddings: none
    lut_ffn: none
    lut_lmhead: none
    num_chunks: {chunks}
    model_prefix: {PREFIX}
    embeddings: {PREFIX}_embeddings.mlpackage
    lm_head: {PREFIX}_lm_head.mlpackage
    ffn: {PREFIX}_FFN_PF.mlpackage
    split_lm_head: {SPLITS}
""")


def anemll_weights():
    """The split model's weights: embeddings, each attention layer's, lm_head's (in this order)."""
    table = weights(VOCAB, HIDDEN).astype(np.float16)
    layers = [{"index": i, "wk": weights(HIDDEN, HIDDEN).astype(np.float16), "wv": weights(HIDDEN, HIDDEN).astype(np.float16)}
              for i in range(LAYERS)]
    return table, layers, [weights(VOCAB // SPLITS, HIDDEN).astype(np.float16) for _ in range(SPLITS)]


def anemll(dest, work, model, n):
    """The split model `model` (anemll_weights) converted with `n` FFN chunks."""
    table, layers, heads = model
    dest.mkdir()
    embeddings(dest, table, n)
    chunks(dest, work, layers, n)
    lm_head(dest, heads, n)
    tokenizer(dest)
    meta_yaml(dest, n)



# ---- the inputs anemll's chat loop feeds the split model ----


def make_causal_mask(length, start):
    """As anemll's tests/chat.py builds it."""
    mask = np.full((1, 1, length, length), -np.inf, dtype=np.float16)
    row_indices = np.arange(length).reshape(length, 1)
    col_indices = np.arange(length).reshape(1, length)
    mask[:, :, col_indices <= (row_indices + start)] = 0
    return mask


def chat_loop_inputs(dest):
    """What run_prefill and generate_next_token pass to the models, step by step; masks as open (0) flags."""
    prompt = [int(t) for t in RNG.integers(6, VOCAB, size=13)]
    generated = [int(t) for t in RNG.integers(6, VOCAB, size=4)]
    mask = make_causal_mask(CONTEXT, 0)
    open_rows = lambda m: [[bool(v == 0) for v in row] for row in m[0, 0]]  # noqa: E731
    prefill, batch_pos = [], 0
    while batch_pos < len(prompt):
        batch_end = min(batch_pos + BATCH, len(prompt))
        ids = prompt[batch_pos:batch_end] + [0] * (BATCH - (batch_end - batch_pos))
        prefill.append({"input_ids": ids, "position_ids": list(range(batch_pos, batch_pos + BATCH)), "current_pos": batch_pos,
                        "causal_mask_open": open_rows(mask[:, :, batch_pos:batch_pos + BATCH, :])})
        batch_pos = batch_end
    infer, input_ids, pos = [], list(prompt), len(prompt)
    for token in generated:
        update = [0] * CONTEXT
        update[pos - 1] = 1
        infer.append({"input_id": input_ids[pos - 1], "position_ids": [pos - 1], "current_pos": [pos - 1],
                      "causal_mask_open": open_rows(mask[:, :, pos - 1:pos, :])[0], "update_mask": update})
        input_ids.append(token)
        pos += 1
    # The loop runs while pos < context_length - 1: how many tokens this prompt can generate.
    most = len(range(len(prompt), CONTEXT - 1))
    out = {"context_length": CONTEXT, "batch_size": BATCH, "prompt": prompt, "generated": generated,
           "prefill": prefill, "infer": infer, "max_new_tokens": most}
    (dest / "anemll-chat-loop.json").write_text(json.dumps(out) + "\n")


# ---- the layout of a compiled model (.mlmodelc), as Apple's compiler writes it ----

DTYPES = {65568: ("Float32", "fp32"), 65600: ("Double", "fp64"), 131104: ("Int32", "int32"),
          131080: ("Int8", "int8"), 65552: ("Float16", "fp16")}


def schema(features, kind):
    out = []
    for f in features:
        arr = f.type.stateType.arrayType if kind == "State" else f.type.multiArrayType
        dtype, _ = DTYPES[arr.dataType]
        shape = list(arr.shape)
        dims = " × ".join(str(d) for d in shape)
        entry = {"hasShapeFlexibility": "0", "isOptional": "0", "dataType": dtype, "formattedType": f"{kind} ({dtype} {dims})",
                 "shortDescription": "", "shape": json.dumps(shape), "name": f.name, "type": kind}
        if kind == "State":
            del entry["hasShapeFlexibility"]
        out.append(entry)
    return out


def mil_signature(fn):
    args = []
    for f in fn.input:
        dtype, mil = DTYPES[f.type.multiArrayType.dataType]
        args.append(f"tensor<{mil}, {list(f.type.multiArrayType.shape)}> {f.name}")
    for f in fn.state:
        dtype, mil = DTYPES[f.type.stateType.arrayType.dataType]
        args.append(f"state<tensor<{mil}, {list(f.type.stateType.arrayType.shape)}>> {f.name}")
    outs = ", ".join(f.name for f in fn.output)
    return f"    func {fn.name}<ios18>({', '.join(args)}) {{\n    }} -> ({outs});\n"


def compiled_layout(package, out):
    """metadata.json and the function signatures of model.mil for the (multifunction) package."""
    spec = ct.utils.load_spec(str(package))
    d = spec.description
    functions = [{"name": f.name, "inputSchema": schema(f.input, "MultiArray"), "outputSchema": schema(f.output, "MultiArray"),
                  "stateSchema": schema(f.state, "State"), "computePrecision": "Mixed (Float16, Int32)"} for f in d.functions]
    default = next(f for f in functions if f["name"] == d.defaultFunctionName)
    meta = {
        "metadataOutputVersion": "3.0", "shortDescription": d.metadata.shortDescription, "author": d.metadata.author,
        "specificationVersion": spec.specificationVersion, "isUpdatable": "0", "storagePrecision": "Float16",
        "availability": {"macOS": "15.0", "tvOS": "18.0", "visionOS": "2.0", "watchOS": "11.0", "iOS": "18.0", "macCatalyst": "18.0"},
        "modelType": {"name": "MLModelType_mlProgram"}, "userDefinedMetadata": dict(d.metadata.userDefined),
        "inputSchema": default["inputSchema"], "outputSchema": default["outputSchema"], "stateSchema": default["stateSchema"],
        "functions": functions, "defaultFunctionName": d.defaultFunctionName, "generatedClassName": package.stem, "method": "predict",
    }
    out.mkdir(parents=True)
    (out / "metadata.json").write_text(json.dumps([meta], indent=2, ensure_ascii=False) + "\n")
    mil = "program(1.3)\n{\n" + "".join(mil_signature(f) for f in d.functions) + "}\n"
    (out / "model.mil").write_text(mil)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True)
    work = out / ".work"
    work.mkdir()
    plain(out)
    stateful(out)
    multifunction(out, work)
    ranged(out)
    model = anemll_weights()
    anemll(out / "anemll", work, model, CHUNKS)
    anemll(out / "anemll-chunks1", work, model, 1)
    chat_loop_inputs(out)
    name = f"{PREFIX}_FFN_PF_chunk_01of{CHUNKS:02d}"
    compiled_layout(out / "anemll" / f"{name}.mlpackage", out / "compiled" / f"{name}.mlmodelc")
    shutil.rmtree(work)
