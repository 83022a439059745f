"""The chapter figures (advexp_book.figures): each returns a Figure with its panels, refuses bad shapes."""

import pytest
import torch
from torch import nn

from advexp_book import figures
from advexp_lib.checks import InputError


def test_figures():
    fig = figures.plot_half_huber((0.5, 1.0))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    x = torch.rand(3, 1, 4, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    fig = figures.plot_minimal_examples(
        model, x, torch.tensor([0, 1, 2]), x.flip(0), torch.tensor([0.1, float("inf"), 0.2])
    )
    assert len(fig.axes) == 9
    with pytest.raises(InputError, match="x_adv"):
        figures.plot_minimal_examples(model, x, torch.tensor([0, 1, 2]), x[:2], torch.zeros(3))


def test_reference_comparison_shows_the_difference_to_scale():
    x = torch.zeros(2, 3, 4, 4)
    reference = x.clone()
    ours = x.clone()
    ours[1, 0, 2, 2] = 0.2  # one pixel off by 51 levels
    fig = figures.plot_reference_comparison(x, ours, reference, labels=["a", "b"])
    assert len(fig.axes) == 8
    diff_panel = fig.axes[7].images[0]  # row 4, column 2 (row-major)
    assert diff_panel.get_array().max() == pytest.approx(0.2) and diff_panel.get_clim() == pytest.approx(
        (0, 0.2)
    )
    assert "51/255" in fig.axes[6].get_ylabel()
    with pytest.raises(InputError, match="reference"):
        figures.plot_reference_comparison(x, ours, reference[:1])
    with pytest.raises(InputError, match="labels"):
        figures.plot_reference_comparison(x, ours, reference, labels=["a"])
