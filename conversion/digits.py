"""The digits demo model: a small CNN trained at conversion time on sklearn's `load_digits`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
IMAGE_SHAPE = (1, 8, 8)
NUM_CLASSES = 10


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a max-pool and two dense layers: 8x8 grey image -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """FP32 [batch, 1, 8, 8] pixels in [0, 1] -> FP32 [batch, 10] logits."""
        return self.classifier(self.features(image))


@dataclass(frozen=True)
class DigitsData:
    """Pixels scaled to [0, 1], shaped [N, 1, 8, 8]; integer labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_data(seed: int = 0) -> DigitsData:
    """sklearn's digits, split 70/30 stratified (sklearn imported here: the GPU script may lack it)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target, test_size=0.3, random_state=seed, stratify=digits.target
    )
    return DigitsData(train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64))


def train(data: DigitsData, seed: int = 0, epochs: int = 30, batch_size: int = 64) -> DigitsCNN:
    """Seeded Adam training; about ten seconds on two cores."""
    torch.manual_seed(seed)
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose argmax of `logits` [rows, classes] equals `labels` [rows]."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))
