"""Model factories for the CLI tests (`--model tests.conversion.factories:<name>`)."""

import torch

from conversion.digits import DigitsCNN


def digits_untrained() -> torch.nn.Module:
    torch.manual_seed(0)
    return DigitsCNN()


class _Median(torch.nn.Module):
    def forward(self, image):
        return image.flatten(1).median(dim=1).values.unsqueeze(1)  # aten::median: no ONNX mapping


def unexportable() -> torch.nn.Module:
    return _Median()


def not_a_module():
    return "a string"
