"""The baseline: a hand-written minimal PyTorch loop doing the same work as the bench specs.

Same data, split (scikit-learn, same seeds), transform, MLP, optimizer, batch size and
per-epoch validation (loss + accuracy) as ``bench/specs/*.yaml``; no tracking, no checks.
Prints one JSON line: the epoch times and the final test accuracy.

    python bench/hand.py digits|fashion|fashion_cnn [--epochs N] [--data FILE.npz]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F


def load(name: str, path: str | None) -> tuple[np.ndarray, ...]:
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.preprocessing import StandardScaler

        bunch = load_digits()
        x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
        rest, test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
        # as runner/data/splits.py: a val fraction of all rows, taken from what the test part left
        train, val = train_test_split(rest, test_size=0.1 / (len(rest) / len(y)), random_state=1, stratify=y[rest])
        train, val, test = np.sort(train), np.sort(val), np.sort(test)
        scaler = StandardScaler().fit(x[train])
        parts = [scaler.transform(x[i]).astype(np.float32) for i in (train, val, test)]
        return parts[0], y[train], parts[1], y[val], parts[2], y[test]
    with np.load(path) as data:  # a Fashion-MNIST subset written by bench/run.py
        x, y, xt, yt = (data[k] for k in ("x", "y", "x_test", "y_test"))
    shape = (1, 28, 28) if name == "fashion_cnn" else (-1,)
    x = x.reshape(len(x), *shape).astype(np.float32) / 255
    xt = xt.reshape(len(xt), *shape).astype(np.float32) / 255
    train, val = train_test_split(np.arange(len(y)), test_size=0.1, random_state=1, stratify=y)
    train, val = np.sort(train), np.sort(val)
    return x[train], y[train].astype(np.int64), x[val], y[val].astype(np.int64), xt, yt.astype(np.int64)


def train(workload: str, epochs: int = 20, data: str | None = None) -> dict[str, object]:
    """Train the workload's model with the plain loop; its epoch times and test accuracy."""
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as the specs' device: auto
    xtr, ytr, xva, yva, xte, yte = (torch.from_numpy(a).to(device) for a in load(workload, data))
    if workload == "fashion_cnn":  # the `cnn` model's default layers
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        ).to(device)
    else:
        hidden = [128, 64] if workload == "digits" else [256, 128]
        layers: list[nn.Module] = []
        width = xtr.shape[1]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        model = nn.Sequential(*layers, nn.Linear(width, 10)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.0)
    order_rng = torch.Generator().manual_seed(0)
    epoch_times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(ytr), generator=order_rng).to(device)
        for i in range(0, len(order), 64):
            rows = order[i : i + 64]
            loss = F.cross_entropy(model(xtr[rows]), ytr[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(xva)
            val = (F.cross_entropy(out, yva).item(), (out.argmax(1) == yva).float().mean().item())
        epoch_times.append(time.perf_counter() - start)
    with torch.no_grad():
        accuracy = (model(xte).argmax(1) == yte).float().mean().item()
    return {"epoch_times": epoch_times, "test/accuracy": accuracy, "val": val}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["digits", "fashion", "fashion_cnn"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data")
    args = parser.parse_args()
    print(json.dumps(train(args.workload, args.epochs, args.data)))


if __name__ == "__main__":
    main()
