"""The `char_lm` task: a byte-level transformer LM on Python's own documentation text.

The corpus ships with every CPython install: ``pydoc_data.topics`` (the language
reference topics behind ``help()``, about 465 kB of English prose and code). A
user-supplied UTF-8 file can replace it (``CharLMTask(corpus_path=...)``). Each instance
seed shuffles the topics and deals them into validation, test and training text, so
instances differ in what they train and are scored on; instance 0 is the canonical one.

Trusted evaluation. For a language model the labels are the next bytes, and the inputs
*are* the text, so scoring every position would hand the program its own labels. The
parent therefore cuts the validation text into chunks of ``CONTEXT + 1`` bytes, gives the
program only the first ``CONTEXT`` bytes of each chunk, and keeps the last byte, the
target. No target byte occurs in any context the program sees. The program submits an
``(n_chunks, 256)`` matrix of next-byte scores; the parent normalises each row with a
log-softmax (so unnormalised or forged scores cannot lower the loss) and reports the mean
negative log2-probability of the targets: validation bits per byte (``val_bpb``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.task import CodePatch, InnerTask, Instance, Knob, TaskError

HERE = Path(__file__).parent

#: bytes of context per scored position, and scored positions per evaluation split
CONTEXT = 64
N_EVAL = 1024

START_CONFIG: dict[str, Any] = {
    "lr": 1e-3,
    "batch_size": 16,
    "width": 64,
    "depth": 2,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "steps": 300,
}

#: a careful human's first tuning, within the same compute (see docs/tasks.md)
REFERENCE_CONFIG: dict[str, Any] = {**START_CONFIG, "lr": 4e-3}

KNOBS = (
    Knob("lr", "learning_rate", "log", 1e-4, 3e-2, 2.0),
    Knob("batch_size", "batch", "choice", choices=(4, 8, 16, 32, 64, 128)),
    Knob("width", "width", "log", 16, 256, 2.0, integer=True),
    Knob("depth", "depth", "linear", 1, 6, 1, integer=True),
    Knob("weight_decay", "weight_decay", "log", 1e-3, 1.0, 10.0, zero_ok=True),
    Knob("dropout", "dropout", "linear", 0.0, 0.5, 0.1),
    Knob("steps", "duration", "log", 50, 3200, 2.0, integer=True),
)

PATCHES = (
    CodePatch(
        "activation_gelu",
        "ReLU -> GELU in the MLPs",
        (("Activation = nn.ReLU", "Activation = nn.GELU"),),
    ),
    CodePatch(
        "norm_layer",
        "pre-norm LayerNorm in every block and before the head",
        (
            (
                "Norm = nn.Identity  # no normalisation layers",
                "Norm = nn.LayerNorm  # pre-norm LayerNorm",
            ),
        ),
    ),
    CodePatch(
        "grad_clip",
        "clip the gradient norm at 1.0",
        (
            (
                "clip_norm = None  # gradient clipping off",
                "clip_norm = 1.0  # clip the gradient norm",
            ),
        ),
    ),
    CodePatch(
        "label_smoothing",
        "label smoothing 0.1",
        (("smoothing = 0.0  # no label smoothing", "smoothing = 0.1  # label smoothing"),),
    ),
    CodePatch(
        "cosine_schedule",
        "cosine learning-rate decay to zero",
        (
            (
                "    f = 1.0  # constant learning rate\n",
                "    f = 0.5 * (1.0 + math.cos(math.pi * step / steps))  # cosine decay\n",
            ),
        ),
    ),
    CodePatch(
        "warmup",
        "linear learning-rate warmup over the first 10% of steps",
        (
            (
                "    return f\n",
                "    return f * min(1.0, (step + 1) / warmup_steps)  # linear warmup\n",
            ),
        ),
    ),
    CodePatch(
        "weight_ema",
        "predict with an exponential moving average of the weights (decay 0.98)",
        (
            (
                "ema = None  # no weight averaging",
                "ema = torch.optim.swa_utils.AveragedModel(\n"
                "    model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.98)\n"
                ")  # weight EMA",
            ),
        ),
    ),
    CodePatch(
        "optimizer_swap",
        "AdamW -> NAdam (decoupled weight decay)",
        (
            (
                'opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])',
                "opt = torch.optim.NAdam(\n"
                '    model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], decoupled_weight_decay=True\n'
                ")",
            ),
        ),
    ),
    CodePatch(
        "init_scheme",
        "GPT-2 initialisation: normal(0, 0.02) weights, zero biases",
        (
            (
                "    pass  # PyTorch's default initialisation\n",
                "    if isinstance(module, (nn.Linear, nn.Embedding)):  # GPT-2 initialisation\n"
                "        nn.init.normal_(module.weight, mean=0.0, std=0.02)\n"
                "    if isinstance(module, nn.Linear) and module.bias is not None:\n"
                "        nn.init.zeros_(module.bias)\n",
            ),
        ),
    ),
)


def load_corpus(path: str | Path | None = None) -> dict[str, bytes]:
    """The corpus as named documents: Python's ``pydoc_data.topics``, or one UTF-8 file.

    A user file is cut into documents at blank lines (groups of about 4 kB), so the
    topic-wise split below applies to it too.

    Raises:
        TaskError: the file does not exist or is too small to split.
    """
    if path is None:
        from pydoc_data.topics import topics

        return {name: topics[name].encode("utf-8") for name in sorted(topics)}
    p = Path(path).expanduser()
    if not p.is_file():
        raise TaskError(f"char_lm: corpus_path {str(p)!r} does not exist (fix task.corpus_path)")
    text = p.read_bytes()
    docs: dict[str, bytes] = {}
    buf = b""
    for para in text.split(b"\n\n"):
        buf += para + b"\n\n"
        if len(buf) >= 4096:
            docs[f"doc{len(docs):05d}"] = buf
            buf = b""
    if buf:
        docs[f"doc{len(docs):05d}"] = buf
    need = 3 * (CONTEXT + 1) * N_EVAL
    if len(text) < need:
        raise TaskError(
            f"char_lm: corpus_path {str(p)!r} has {len(text)} bytes; it needs at least {need}"
        )
    return docs


def eval_chunks(
    text: bytes, n: int = N_EVAL, context: int = CONTEXT
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``text`` into ``n`` chunks: contexts ``(n, context)`` and the hidden next bytes ``(n,)``."""
    size = context + 1
    if len(text) < n * size:
        raise TaskError(f"char_lm: evaluation text has {len(text)} bytes; it needs {n * size}")
    arr = np.frombuffer(text[: n * size], dtype=np.uint8).reshape(n, size)
    return arr[:, :context].copy(), arr[:, context].astype(np.int64)


class CharLMTask(InnerTask):
    """Byte-level transformer LM; metric ``val_bpb`` (bits per byte, minimize).

    Args:
        corpus_path: a UTF-8 text file to use instead of ``pydoc_data.topics``.
        start_config: overrides of the start config (e.g. ``{"steps": 50}`` for quick checks).
    """

    name = "char_lm"
    metric = "val_bpb"
    direction = "minimize"
    #: a floor for this data size (a few hundred kB); it only scales the reward
    metric_optimum = 1.0
    noise_prior = 0.05
    program_dir = HERE
    default_timeout = 90.0
    knobs = KNOBS
    patches = PATCHES
    heldout_seeds = range(0, 10)
    meta_train_seeds = range(10, 1000)

    def __init__(
        self, corpus_path: str | None = None, start_config: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.corpus_path = corpus_path
        unknown = sorted(set(start_config or {}) - set(START_CONFIG))
        if unknown:
            raise TaskError(
                f"char_lm: start_config keys {unknown} are unknown; keys: {sorted(START_CONFIG)}"
            )
        self.start_config = {**START_CONFIG, **dict(start_config or {})}
        self._corpus: dict[str, bytes] | None = None

    def make_instance(self, seed: int) -> Instance:
        if self._corpus is None:
            self._corpus = load_corpus(self.corpus_path)
        names = sorted(self._corpus)
        order = np.random.default_rng(seed).permutation(len(names))
        need = (CONTEXT + 1) * N_EVAL
        parts: dict[str, list[bytes]] = {"val": [], "test": [], "train": []}
        sizes = {"val": 0, "test": 0}
        for i in order:
            doc = self._corpus[names[i]]
            split = next((s for s in ("val", "test") if sizes[s] < need), "train")
            parts[split].append(doc)
            if split in sizes:
                sizes[split] += len(doc)
        text = {split: b"".join(docs) for split, docs in parts.items()}
        x_val, y_val = eval_chunks(text["val"])
        x_test, y_test = eval_chunks(text["test"])
        data = {
            "x_train": np.frombuffer(text["train"], dtype=np.uint8).copy(),
            "x_val": x_val,
            "y_val": y_val,
            "x_test": x_test,
            "y_test": y_test,
        }
        return Instance(
            task=self.name,
            seed=seed,
            data=data,
            start_config=dict(self.start_config),
            reference_config=dict(REFERENCE_CONFIG),
            info={"train_bytes": len(text["train"]), "context": CONTEXT, "n_eval": N_EVAL},
        )

    def child_inputs(self, instance: Instance, split: str) -> dict[str, np.ndarray]:
        """Training bytes and the evaluation contexts; never the bytes that follow them."""
        return {"train_text": instance.data["x_train"], "x_eval": instance.data[f"x_{split}"]}

    def evaluate(self, predictions: np.ndarray, instance: Instance, split: str) -> dict[str, float]:
        """Bits per byte of the hidden next bytes under the submitted (re-normalised) scores."""
        y = instance.data[f"y_{split}"]
        p = np.asarray(predictions, dtype=np.float64)
        if p.shape != (len(y), 256):
            raise ValueError(
                f"predictions have shape {p.shape}; expected ({len(y)}, 256) next-byte log-probabilities"
            )
        top = p.max(axis=1, keepdims=True)
        logz = top[:, 0] + np.log(np.exp(p - top).sum(axis=1))
        nll = logz - p[np.arange(len(y)), y]
        prefix = "val" if split == "val" else split
        return {f"{prefix}_bpb": float(nll.mean() / np.log(2.0))}
