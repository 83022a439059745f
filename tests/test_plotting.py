"""Figures: each returns a matplotlib Figure with the panels it promises, and refuses bad shapes."""

import pytest
import torch
from torch import nn

from advexp_lib import plotting
from advexp_lib.checks import InputError


def test_figures():
    fig = plotting.plot_half_huber((0.5, 1.0))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    x = torch.rand(3, 1, 4, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    fig = plotting.plot_minimal_examples(
        model, x, torch.tensor([0, 1, 2]), x.flip(0), torch.tensor([0.1, float("inf"), 0.2])
    )
    assert len(fig.axes) == 9
    with pytest.raises(InputError, match="x_adv"):
        plotting.plot_minimal_examples(model, x, torch.tensor([0, 1, 2]), x[:2], torch.zeros(3))
