"""llama.cpp peer (llama-cpp-python): SmolLM2-135M-Instruct Q4_1 GGUF, prefill and decode at 128.

The same timed regions as the agent's `prefill` and `decode` workloads
(agent/src/workload/decoder.rs):
- prefill: the 128-token prompt's forward pass from an empty KV cache, then the argmax of the
  last position's logits. Untimed before it: `Llama.reset()` (the KV cache is emptied).
- decode: one greedy step (one token in, argmax of its logits out) after a prompt of 128 tokens.
  The context grows by up to MAX_NEW_TOKENS (the first token comes from the prefill) or until
  an end-of-generation token, then the next prompt is prefilled again, untimed.

Prompts: the model's own chat template (from the GGUF) around the agent's typo-correction
instruction and real typo'd text, the text cut so the whole prompt is exactly 128 tokens of
llama.cpp's own tokenizer (agent/src/workload/prompt.rs does the same with its tokenizer).

Prints one JSON document (see common.emit) on stdout.
"""

import common

MODEL = "smollm2-135m"  # the model's name in specs/*.toml
FILE = "smollm2-135m-instruct.q4_1.gguf"
CONTEXT_LENGTH = 128
MAX_NEW_TOKENS = 16  # specs/*.toml: max_new_tokens of the decode benchmark
N_CTX = 512  # room for 128 + 16 tokens; the KV cache llama.cpp allocates
INPUT_STRIDE = 7  # input i starts at sentence i * 7, as in the agent's decoder workloads
# anefleet_models::TYPO_INSTRUCTION
TYPO_INSTRUCTION = "Correct the typos in the following text. Reply with the corrected text only.\n\n"
PLACEHOLDER = "\x01ANEFLEET_CONTENT\x01"


def render_chat(llm, user_message: str) -> str:
    """The GGUF's chat template applied to one user message, with the generation prompt."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(llm.metadata["tokenizer.chat_template"])
    special = lambda t: llm.detokenize([t], special=True).decode("utf-8", "replace")  # noqa: E731
    return template.render(
        messages=[{"role": "user", "content": user_message}],
        add_generation_prompt=True,
        bos_token=special(llm.token_bos()),
        eos_token=special(llm.token_eos()),
    )


def chat_prompt(llm, sentences: list[str], start: int, n: int) -> list[int]:
    """Exactly `n` ids: template and instruction around real typo'd text cut to fit."""
    pre, post = render_chat(llm, TYPO_INSTRUCTION + PLACEHOLDER).split(PLACEHOLDER)
    pre_ids = llm.tokenize(pre.encode(), add_bos=False, special=True)
    post_ids = llm.tokenize(post.encode(), add_bos=False, special=True)
    frame = len(pre_ids) + len(post_ids)
    body = common.text_tokens(lambda t: llm.tokenize(t.encode(), add_bos=False, special=False), sentences, start, n - frame)
    ids = pre_ids + body + post_ids
    assert len(ids) == n, (len(ids), n)
    return ids


class Session:
    """A loaded model and the greedy steps both workloads time."""

    def __init__(self, llm):
        import llama_cpp
        import numpy as np

        self.llm, self.np, self.lib = llm, np, llama_cpp
        self.n_vocab = llm.n_vocab()

    def forward(self, tokens: list[int]) -> int:
        """Feeds `tokens` after the cached ones; the argmax of the last position's logits."""
        self.llm.eval(tokens)
        logits = self.np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.n_vocab,))
        return int(logits.argmax())

    def is_eog(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.llm._model.vocab, token))


def measure_prefill(s: Session, prompts: list[list[int]], runs: int) -> dict:
    samples = common.time_runs(lambda i: s.forward(prompts[i]), runs, before=lambda i: s.llm.reset())
    return common.figure(MODEL, "prefill", len(prompts[0]), samples, prompt_sha256=[common.sha256_ids(p) for p in prompts])


def measure_decode(s: Session, prompts: list[list[int]], runs: int) -> dict:
    state = {"generated": [], "pos": 0}

    def before(i: int) -> None:
        g = state["generated"]
        if state["pos"] == 0 or len(g) >= MAX_NEW_TOKENS or (g and s.is_eog(g[-1])):
            s.llm.reset()
            state["generated"] = [s.forward(prompts[i])]
            state["pos"] = len(prompts[i])

    def run(_: int) -> None:
        state["generated"].append(s.forward([state["generated"][-1]]))
        state["pos"] += 1

    samples = common.time_runs(run, runs, before=before)
    prompt_sha256 = [common.sha256_ids(p) for p in prompts]
    return common.figure(MODEL, "decode", len(prompts[0]), samples, max_new_tokens=MAX_NEW_TOKENS, prompt_sha256=prompt_sha256)


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0])
    common.pin_threads(args.threads)
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(args.models / FILE),
        n_ctx=N_CTX,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_gpu_layers=0,
        verbose=False,
    )
    sentences = common.typo_sentences(args.repo)
    prompts = [chat_prompt(llm, sentences, i * INPUT_STRIDE, CONTEXT_LENGTH) for i in range(common.INPUTS_PER_FIGURE)]
    s = Session(llm)
    figures = []
    for name, measure in (("prefill", measure_prefill), ("decode", measure_decode)):
        f = measure(s, prompts, args.runs)
        common.log(f"llama-cpp-python SmolLM2 {name} {CONTEXT_LENGTH}: median {f['median_ms']:.2f} ms over {f['runs']} runs")
        figures.append(f)
    versions = {
        "llama-cpp-python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "n_ctx": N_CTX,
        "n_batch": llm.n_batch,
    }
    common.emit("llama-cpp-python", f"llama.cpp (llama-cpp-python {llama_cpp.__version__})", versions, args.threads, figures)


if __name__ == "__main__":
    main()
