"""mlp2: a two-hidden-layer MLP classifier, each layer with its own width, dropout and
activation, trained with Adam on random minibatches under a chosen learning-rate schedule.

Reads config, seed and data from `rsi_rl.harness` and submits class probabilities for the
evaluation inputs; the trusted parent scores them.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from rsi_rl import harness

cfg = harness.config()
data = harness.data()
X = torch.tensor(data["x_train"], dtype=torch.float32)
Y = torch.tensor(data["y_train"], dtype=torch.long)
X_eval = torch.tensor(data["x_eval"], dtype=torch.float32)
n_classes = int(data["n_classes"])
mu, sd = X.mean(0), X.std(0) + 1e-6
X, X_eval = (X - mu) / sd, (X_eval - mu) / sd

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
model = nn.Sequential(
    nn.Linear(X.shape[1], int(cfg["width1"])),
    ACTIVATIONS[cfg["act1"]](),
    nn.Dropout(float(cfg["dropout1"])),
    nn.Linear(int(cfg["width1"]), int(cfg["width2"])),
    ACTIVATIONS[cfg["act2"]](),
    nn.Dropout(float(cfg["dropout2"])),
    nn.Linear(int(cfg["width2"]), n_classes),
)
optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
n_steps, batch = int(cfg["steps"]), 64


def schedule(t: int) -> float:
    if cfg["schedule"] == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / n_steps))
    if cfg["schedule"] == "step":
        return 0.1 ** (t // max(1, n_steps // 3))
    return 1.0


gen = torch.Generator().manual_seed(harness.seed())
running = None
for t in range(n_steps):
    idx = torch.randint(0, len(X), (min(batch, len(X)),), generator=gen)
    for group in optimizer.param_groups:
        group["lr"] = float(cfg["lr"]) * schedule(t)
    model.train()
    loss = F.cross_entropy(model(X[idx]), Y[idx])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
    if (t + 1) % max(1, n_steps // 10) == 0:
        harness.log(step=t + 1, train_loss=running)

model.eval()
with torch.no_grad():
    harness.log(train_acc=(model(X).argmax(1) == Y).float().mean().item())
    harness.submit(F.softmax(model(X_eval), dim=1).numpy())
