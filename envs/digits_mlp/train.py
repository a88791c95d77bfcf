"""digits_mlp: a small MLP on scikit-learn's 8x8 handwritten digits.

This is the editable training program of the `digits_mlp` task. It runs inside the
rsi_rl sandbox: it reads its config, seed and data through `rsi_rl.harness`, trains, and
submits class probabilities for the evaluation inputs. It never sees evaluation labels;
the trusted parent scores the predictions.

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
x_train = torch.tensor(data["x_train"], dtype=torch.float32)
y_train = torch.tensor(data["y_train"], dtype=torch.long)
x_eval = torch.tensor(data["x_eval"], dtype=torch.float32)
n_classes = int(data["n_classes"])
device = torch.device(harness.device())  # "cuda" when the sandbox gave this run a GPU
x_train, y_train, x_eval = x_train.to(device), y_train.to(device), x_eval.to(device)

# ---------------------------------------------------------------- inputs (EDITABLE)
x_train, x_eval = x_train / 16.0, x_eval / 16.0  # pixel intensities are 0..16

# ---------------------------------------------------------------- model (EDITABLE)
Activation = nn.ReLU


class Block(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = nn.Identity()
        self.act = Activation()
        self.drop = nn.Dropout(cfg["dropout"])
        self.skip = False  # residual connection when shapes match

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.norm(self.linear(x))))
        return x + h if self.skip and x.shape == h.shape else h


def init_weights(module: nn.Module) -> None:
    pass  # PyTorch's default (Kaiming-uniform) initialisation


width, depth = int(cfg["width"]), int(cfg["depth"])
blocks = [Block(x_train.shape[1] if i == 0 else width, width) for i in range(depth)]
model = nn.Sequential(*blocks, nn.Linear(width, n_classes))
model.apply(init_weights)
model.to(device)

# ---------------------------------------------------------------- optimisation (EDITABLE)
opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
loss_fn = nn.CrossEntropyLoss()
batch_size, epochs = int(cfg["batch_size"]), int(cfg["epochs"])
total_steps = epochs * math.ceil(len(x_train) / batch_size)
warmup_steps = max(1, total_steps // 10)
clip_norm = None  # gradient clipping off
ema = None  # no weight averaging


def lr_factor(step: int) -> float:
    f = 1.0  # constant learning rate
    return f


# ---------------------------------------------------------------- training loop
g = torch.Generator().manual_seed(harness.seed())
x_probe, y_probe = x_train[:256], y_train[:256]  # a held-in slice: the pruner's probe
step = 0
for _epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(x_train), generator=g)
    epoch_loss = 0.0
    for i in range(0, len(x_train), batch_size):
        idx = perm[i : i + batch_size]
        for group in opt.param_groups:
            group["lr"] = cfg["lr"] * lr_factor(step)
        loss = loss_fn(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        epoch_loss += loss.item() * len(idx)
        step += 1
    harness.log(step=step, train_loss=epoch_loss / len(x_train))
    model.eval()  # the probe's loss lets a pruner stop a hopeless run (never the metric)
    with torch.no_grad():
        harness.report(_epoch + 1, F.cross_entropy(model(x_probe), y_probe).item(), total=epochs)

# ---------------------------------------------------------------- predictions (TRY NOT TO MODIFY)
final = ema if ema is not None else model
final.eval()
with torch.no_grad():
    train_acc = (final(x_train).argmax(dim=1) == y_train).float().mean().item()
    probs = F.softmax(final(x_eval), dim=1)
harness.log(train_acc=train_acc)
harness.submit(probs.cpu().numpy())
