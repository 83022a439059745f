"""A transcription of Woods et al.'s reference search loop, the oracle the tests and benchmarks compare with.

Written from the method notes of the reference implementation
(wwoods/adversarial-explanations-cifar, ``main.py``: ``_adv_images`` and
``calculate_ara``) as one plain loop, in the reference's own terms (``use_l2min``,
``encourage_labels``, ``affected``, a best buffer starting at zero, the
``1e-8`` in the normalization, an un-normalized momentum average), without
any of advexp_lib's code. Imported as a plain module (tests/ has no __init__).
"""

import torch
import torch.nn.functional as F


class ImproperMinimization(ValueError):
    """The reference's refusal: some example first met its criterion after T // 2 steps, or never."""


def reference_search(
    model,
    images,
    labels,
    *,
    eps,
    steps,
    eps_overshoot=1.0,
    momentum=0.0,
    use_l2min=False,
    encourage_labels=False,
    affected=None,
    ensure_proper_minimization=True,
):
    """x + delta as the reference computes it; ``use_l2min`` is False, True or "btr".

    The model is used in whatever mode the caller left it (the reference
    calls ``m.eval()`` before ARA and explanations, and searches in training
    mode during adversarial training). ``affected``: float (B, 1, 1, 1) mask.
    """
    b = images.shape[0]
    deltas = torch.zeros_like(images, requires_grad=True)
    if affected is None:
        affected = torch.ones(b, 1, 1, 1, dtype=images.dtype)
    size = eps * eps_overshoot
    mom = torch.zeros_like(images)
    track_best = bool(use_l2min)
    extra_steps = 1 if track_best else 0
    first_ok_steps = torch.full((b,), 999 + steps, dtype=torch.long)
    best_ok_deltas = torch.zeros_like(images)
    best_ok_deltas_sqr = torch.full((b,), 1e30, dtype=images.dtype)
    for step in range(steps + extra_steps):
        logits = model(images + deltas)
        loss = F.cross_entropy(logits, labels, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), deltas)
        with torch.no_grad():
            if use_l2min == "btr":
                push = logits.softmax(1)[torch.arange(b), labels] > 1.0 / logits.shape[1]
            elif use_l2min:
                push = logits.argmax(1) == labels
            else:
                push = deltas.pow(2).mean((1, 2, 3)) < eps**2
            f = push.to(images.dtype)[:, None, None, None]
            ok = ~push
            first_ok_steps = torch.where(
                ok & (first_ok_steps > step), torch.full_like(first_ok_steps, step), first_ok_steps
            )
            if track_best:
                dist = deltas.pow(2).mean((1, 2, 3))
                set_best = ok & (dist < best_ok_deltas_sqr)
                best_ok_deltas[set_best] = deltas[set_best]
                best_ok_deltas_sqr[set_best] = dist[set_best]
                if step == steps:
                    deltas.copy_(best_ok_deltas)
                    break
            if encourage_labels:
                grad = -grad
            step_size = size * (steps - step) / (steps * (steps + 1) / 2)
            d = f * grad + (1 - f) * -deltas
            d = d / (1e-8 + d.pow(2).mean((1, 2, 3)).sqrt()[:, None, None, None])
            if momentum > 0:
                mom = momentum * mom + (1 - momentum) * d
                d = mom.clone()
            d = d * affected
            deltas.add_(d, alpha=step_size)
    if ensure_proper_minimization and (first_ok_steps > steps // 2).any():
        raise ImproperMinimization("Increase eps or steps")
    return (images + deltas).detach()


def reference_ara(distances, num_classes, bins=1000):
    """The reference's ARA: a right-endpoint sum over ``bins`` histogram bins of [0, max distance]."""
    d = torch.as_tensor(distances, dtype=torch.float64)
    top = d.max().item()
    width = top / bins
    hist = torch.histc(d, bins=bins, min=0, max=top)
    accuracy = 1 - hist.cumsum(0) / d.numel()
    return width * (accuracy - 1 / num_classes).clamp(min=0).sum().item()
