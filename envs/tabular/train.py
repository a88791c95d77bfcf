"""tabular: an MLP classifier for one generated tabular data set, trained for a fixed
number of optimizer steps on random minibatches.

Editable training program of the `tabular` task family. Features arrive raw: their
scales and offsets differ per instance, which is part of what there is to fix. It reads
config, seed and data from `rsi_rl.harness` and submits class probabilities for the
evaluation inputs; the trusted parent scores them.

EDITABLE sections are where code edits land; harness calls are the contract with the
sandbox (TRY NOT TO MODIFY).
"""

import math  # noqa: F401 - the cosine_schedule edit uses it

import torch
import torch.nn as nn
import torch.nn.functional as F

from rsi_rl import harness

# ---------------------------------------------------------------- harness (TRY NOT TO MODIFY)
cfg = harness.config()
data = harness.data()
X = torch.tensor(data["x_train"], dtype=torch.float32)
Y = torch.tensor(data["y_train"], dtype=torch.long)
X_eval = torch.tensor(data["x_eval"], dtype=torch.float32)
n_classes = int(data["n_classes"])
device = torch.device(harness.device())  # "cuda" when the sandbox gave this run a GPU
X, Y, X_eval = X.to(device), Y.to(device), X_eval.to(device)

# ---------------------------------------------------------------- features (EDITABLE)
preprocess = lambda x: x  # noqa: E731 - raw features
X, X_eval = preprocess(X), preprocess(X_eval)

# ---------------------------------------------------------------- model (EDITABLE)
act_fn = F.relu
use_norm = False
use_residual = False


class MLP(nn.Module):
    def __init__(self, d_in: int, width: int, depth: int, n_out: int, p_drop: float):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.norms = nn.ModuleList(
            nn.LayerNorm(width) if use_norm else nn.Identity() for _ in range(depth)
        )
        self.drop = nn.Dropout(p_drop)
        self.out = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(act_fn(self.norms[0](self.inp(x))))
        for layer, norm in zip(self.hidden, self.norms[1:], strict=False):
            z = self.drop(act_fn(norm(layer(h))))
            h = h + z if use_residual else z
        return self.out(h)


model = MLP(X.shape[1], int(cfg["width"]), int(cfg["depth"]), n_classes, cfg["dropout"])
for p in model.parameters():
    if p.dim() > 1:
        pass  # default initialisation
model.to(device)

# ---------------------------------------------------------------- optimisation (EDITABLE)
optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
smoothing = 0.0
max_grad_norm = 0.0  # 0 = no clipping
n_steps, batch = int(cfg["steps"]), int(cfg["batch_size"])
averaged = None  # no weight averaging


def schedule(t: int) -> float:
    scale = 1.0
    warm = 1.0
    return scale * warm


# ---------------------------------------------------------------- training loop
gen = torch.Generator().manual_seed(harness.seed())
running = None
for t in range(n_steps):
    idx = torch.randint(0, len(X), (min(batch, len(X)),), generator=gen)
    for group in optimizer.param_groups:
        group["lr"] = cfg["lr"] * schedule(t)
    model.train()
    loss = F.cross_entropy(model(X[idx]), Y[idx], label_smoothing=smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if averaged is not None:
        averaged.update_parameters(model)
    running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
    if (t + 1) % max(1, n_steps // 10) == 0:
        harness.log(step=t + 1, train_loss=running)

# ---------------------------------------------------------------- predictions (TRY NOT TO MODIFY)
net = averaged if averaged is not None else model
net.eval()
with torch.no_grad():
    harness.log(train_acc=(net(X).argmax(1) == Y).float().mean().item())
    harness.submit(F.softmax(net(X_eval), dim=1).cpu().numpy())
