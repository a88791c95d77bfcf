"""char_lm: a small character-level transformer language model (nanoGPT-like).

This is the editable training program of the `char_lm` task. It runs inside the rsi_rl
sandbox: it reads its config, seed and data through `rsi_rl.harness`, trains a byte-level
causal transformer on the training text, and submits next-byte log-probabilities for the
evaluation contexts. The evaluation *targets* (the byte that follows each context) never
enter this process: the trusted parent scores the submission in bits per byte.

Sections marked EDITABLE are where code edits land; the harness calls at the top and
bottom are the contract with the sandbox (TRY NOT TO MODIFY).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from rsi_rl import harness

# ---------------------------------------------------------------- harness (TRY NOT TO MODIFY)
cfg = harness.config()
data = harness.data()
train_text = torch.from_numpy(data["train_text"]).long()  # the training bytes, 0..255
x_eval = torch.from_numpy(data["x_eval"]).long()  # (n, context) byte contexts to continue
device = torch.device(harness.device())  # "cuda" when the sandbox gave this run a GPU
train_text, x_eval = train_text.to(device), x_eval.to(device)
vocab_size = 256
block_size = x_eval.shape[1]

# ---------------------------------------------------------------- model (EDITABLE)
Activation = nn.ReLU
Norm = nn.Identity  # no normalisation layers


class SelfAttention(nn.Module):
    def __init__(self, width: int, n_head: int, dropout: float):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, width: int, n_head: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = Norm(width), Norm(width)
        self.attn = SelfAttention(width, n_head, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width),
            Activation(),
            nn.Linear(4 * width, width),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharLM(nn.Module):
    def __init__(self, width: int, depth: int, dropout: float):
        super().__init__()
        n_head = max(1, width // 32)
        self.tok = nn.Embedding(vocab_size, width)
        self.pos = nn.Embedding(block_size, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(width, n_head, dropout) for _ in range(depth)])
        self.norm = Norm(width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.tok(idx) + self.pos(pos))
        return self.head(self.norm(self.blocks(x)))


def init_weights(module: nn.Module) -> None:
    pass  # PyTorch's default initialisation


model = CharLM(int(cfg["width"]), int(cfg["depth"]), float(cfg["dropout"]))
model.apply(init_weights)
model.to(device)

# ---------------------------------------------------------------- optimisation (EDITABLE)
opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
smoothing = 0.0  # no label smoothing
batch_size, steps = int(cfg["batch_size"]), int(cfg["steps"])
warmup_steps = max(1, steps // 10)
clip_norm = None  # gradient clipping off
ema = None  # no weight averaging


def lr_factor(step: int) -> float:
    f = 1.0  # constant learning rate
    return f


# ---------------------------------------------------------------- training loop
g = torch.Generator().manual_seed(harness.seed())
log_every = max(1, steps // 10)
running = 0.0
# a held-in probe (8 fixed windows of the training text) whose loss every 50 steps lets a
# pruner stop a hopeless run; never the metric
probe_at = torch.arange(8) * ((len(train_text) - block_size - 1) // 8)
x_probe = torch.stack([train_text[i : i + block_size] for i in probe_at.tolist()])
y_probe = torch.stack([train_text[i + 1 : i + block_size + 1] for i in probe_at.tolist()])
for step in range(steps):
    ix = torch.randint(len(train_text) - block_size - 1, (batch_size,), generator=g)
    x = torch.stack([train_text[i : i + block_size] for i in ix.tolist()])
    y = torch.stack([train_text[i + 1 : i + block_size + 1] for i in ix.tolist()])
    for group in opt.param_groups:
        group["lr"] = cfg["lr"] * lr_factor(step)
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, vocab_size), y.view(-1), label_smoothing=smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    if ema is not None:
        ema.update_parameters(model)
    running += loss.item()
    if (step + 1) % log_every == 0:
        harness.log(step=step + 1, train_loss=running / log_every / math.log(2))  # bits per byte
        running = 0.0
    if (step + 1) % 50 == 0:
        model.eval()
        with torch.no_grad():
            probe = F.cross_entropy(model(x_probe).view(-1, vocab_size), y_probe.view(-1))
        harness.report(step + 1, probe.item() / math.log(2), total=steps)

# ---------------------------------------------------------------- predictions (TRY NOT TO MODIFY)
final = ema if ema is not None else model
final.eval()
with torch.no_grad():
    logp = torch.cat([F.log_softmax(final(xb)[:, -1], dim=-1) for xb in x_eval.split(256)])
harness.submit(logp.cpu().numpy())  # (n, 256) next-byte log-probabilities, scored by the parent
