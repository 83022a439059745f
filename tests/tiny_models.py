"""Tiny models with known answers, shared by the tests (a plain module: tests/ has no __init__)."""

import torch
from torch import nn


class Linear2(nn.Module):
    """logits = W flatten(x) + b with fixed (non-trainable) W and b, in ``dtype`` (default float64).

    The default W, b give two classes on two pixels, whose boundary distance is
    known in closed form: |f_0 - f_1| / ||w_0 - w_1||.
    """

    def __init__(self, w=((1.0, 2.0), (-1.0, 0.5)), b=(0.3, -0.2), dtype=torch.float64):
        super().__init__()
        self.w, self.b = torch.tensor(w, dtype=dtype), torch.tensor(b, dtype=dtype)

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


def linear_net(w, b=None, dtype=torch.float32) -> nn.Sequential:
    """nn.Sequential(Flatten, Linear) with weight ``w`` (C x n) and bias ``b`` (None: no bias), trainable."""
    w = torch.as_tensor(w, dtype=dtype)
    net = nn.Sequential(nn.Flatten(), nn.Linear(w.shape[1], w.shape[0], bias=b is not None)).to(dtype)
    with torch.no_grad():
        net[1].weight.copy_(w)
        if b is not None:
            net[1].bias.copy_(torch.as_tensor(b, dtype=dtype))
    return net
