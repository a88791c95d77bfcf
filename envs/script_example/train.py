"""Fit a small numpy MLP to a noisy sine wave: an ordinary command-line training script.

It knows nothing of rsi_rl: it parses flags, makes its own data, trains, and prints its
validation loss, the way countless research scripts do::

    python train.py --lr 0.05 --hidden 16 --epochs 200 --seed 0
    ...
    val_loss: 0.0132

The `script_example` task (conf/task/script_example.yaml) wraps it as a script task.
"""

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data_rng = np.random.default_rng(1234)  # the data set is fixed; --seed varies training
    x = data_rng.uniform(-3, 3, size=(600, 1))
    y = np.sin(x) + 0.1 * data_rng.normal(size=x.shape)
    x_train, y_train, x_val, y_val = x[:400], y[:400], x[400:], y[400:]

    rng = np.random.default_rng(args.seed)
    w1 = rng.normal(0, 1.0, (1, args.hidden))
    b1 = np.zeros(args.hidden)
    w2 = rng.normal(0, 1.0 / np.sqrt(args.hidden), (args.hidden, 1))
    b2 = np.zeros(1)
    act = np.tanh

    def forward(inp):
        h = act(inp @ w1 + b1)
        return h, h @ w2 + b2

    for epoch in range(args.epochs):
        perm = rng.permutation(len(x_train))
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            h, out = forward(xb)
            g_out = 2 * (out - yb) / len(idx)
            g_w2 = h.T @ g_out + args.weight_decay * w2
            g_h = g_out @ w2.T * (1 - h**2)
            g_w1 = xb.T @ g_h + args.weight_decay * w1
            w1 -= args.lr * g_w1
            b1 -= args.lr * g_h.sum(0)
            w2 -= args.lr * g_w2
            b2 -= args.lr * g_out.sum(0)
        if epoch % 50 == 0:
            train_loss = float(np.mean((forward(x_train)[1] - y_train) ** 2))
            print(f"epoch {epoch} train_loss {train_loss:.4f}")

    val_loss = float(np.mean((forward(x_val)[1] - y_val) ** 2))
    print(f"val_loss: {val_loss:.6f}")


if __name__ == "__main__":
    main()
