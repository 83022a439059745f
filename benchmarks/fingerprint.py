"""A fingerprint of the library's numerics: run it before and after a refactor and diff the two files.

    .venv/bin/python benchmarks/fingerprint.py --out before.json
    ... refactor ...
    .venv/bin/python benchmarks/fingerprint.py --out after.json
    diff before.json after.json

Each entry is the SHA-256 of a result's bytes (tensors as float32/float64/int64
arrays, with their shape and dtype), so "identical" means bit for bit: the
shipped checkpoints' files and config hashes; ARA distances (Attack and BTR),
the RMSE search in every criterion (training mode and a mask included),
adversarial explanations, every attribution method (detached and
differentiable), Gini, the ISA and the top-k attack, the explanation shift,
the robust-accuracy curve, the transfer line search, the foolbox adapters; and
one epoch of every mnist5k recipe (the weights after it, and its history).
Floating-point summaries that go through another library's arithmetic
(Kendall's tau) are given as values rounded to 12 digits instead.
Runs in a few minutes on 2 CPU cores; ``--skip-training`` leaves out the epochs.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import torch

from advexp_book import experiments
from advexp_lib import attacks, attributions, data, metrics, recipes, zoo
from advexp_lib.attacks import AE_PAPER, AE_REFERENCE, ARA_PAPER, SearchConfig
from advexp_lib.attacks.sneaking import interpretability_sneaking_attack
from advexp_lib.attacks.topk import topk_attribution_attack
from advexp_lib.models import runner_up

torch.set_num_threads(max(1, torch.get_num_threads()))


def digest(value) -> str:
    """SHA-256 (first 16 hex digits) of a tensor's dtype, shape and bytes, or of a JSON-able value."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        raw = f"{t.dtype}{tuple(t.shape)}".encode() + t.numpy().tobytes()
    else:
        raw = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def state_digest(model) -> str:
    return digest([digest(v) for v in model.state_dict().values()])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--skip-training", action="store_true")
    args = p.parse_args()
    fp: dict = {}
    fp["shipped"] = {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in sorted(zoo.SHIPPED_DIR.glob("*.pt"))
    }
    fp["config_hash"] = {
        f"{ds}/{name}": recipes.config_hash(recipes.recipe(ds, name))
        for ds in ("mnist5k", "cifar10", "mnist")
        for name in recipes.recipe_names()
    }
    x, y = data.load_tensors("mnist5k", "test", n=24, seed=3)
    names = ("standard", "all", "cam_standard")
    nets = {name: zoo.get_model("mnist5k", name, progress=False) for name in names}
    for name, net in nets.items():
        f = fp.setdefault(name, {})
        for kind in ("attack", "btr"):
            r = metrics.accuracy_robustness_area(
                net,
                x,
                y,
                kind=kind,
                config=replace(ARA_PAPER, steps=60),
                progress=False,
                on_late="flag",
                never_met="retry",
            )
            f[f"ara_{kind}"] = digest(r.distances)
        r = attacks.rmse_search(net, x, y, criterion="budget", config=SearchConfig(steps=7, eps=0.05))
        f["search_budget"] = digest(r.x_adv)
        with torch.no_grad():
            tgt = runner_up(net(x), y)
        r = attacks.rmse_search(net, x, tgt, criterion="explain", config=AE_PAPER)
        f["search_explain"] = digest(r.x_adv)
        # "ae" is the reference's unclipped search (AE_PAPER before it clipped by default), "ae_clip" AE_PAPER
        explain = functools.partial(attributions.adversarial_explanation, on_late="flag", on_miss="flag")
        f["ae"] = digest(explain(net, x[:8], tgt[:8], config=AE_REFERENCE).x_adv)
        f["ae_clip"] = digest(explain(net, x[:8], tgt[:8], config=AE_PAPER).x_adv)
        train_copy = zoo.get_model("mnist5k", name, progress=False)
        mask = torch.arange(x.shape[0]) % 2 == 0
        r = attacks.rmse_search(
            train_copy,
            x,
            y,
            criterion="attack",
            config=SearchConfig(steps=7, eps=0.1),
            mask=mask,
            model_mode="train",
        )
        f["search_train_mask"] = digest(r.x_adv)
        f["search_train_bn"] = state_digest(train_copy)
        methods = ["saliency", "integrated_gradients", "smoothgrad", "grad_cam", "guided_grad_cam"]
        if name == "cam_standard":
            methods.append("cam")
        for m in methods:
            torch.manual_seed(0)
            e = attributions.explainer(m)
            f[f"map_{m}"] = digest(e.attribute(net, x[:4], y[:4]))
            if e.differentiable:
                f[f"map_{m}_diff"] = digest(e.attribute(net, x[:4], y[:4], differentiable=True))
        ig = attributions.IntegratedGradients(n_steps=20).attribute(net, x, y)
        f["gini"] = digest(metrics.gini(ig))
        eps, acc = metrics.robust_accuracy_curve(net, x, y, [0.0, 0.1, 0.3], steps=10)
        f["robust_curve"] = digest(acc)
        d = attacks.rmse_search(
            nets["standard"], x, y, criterion="attack", config=replace(ARA_PAPER, steps=60)
        )
        f["line_search"] = digest(attacks.line_search(net, x, y, d.x_adv - x).distances)
        for a in ("ddn", "fmn"):
            f[f"foolbox_{a}"] = digest(
                attacks.independent_attack(net, x[:6], y[:6], attack=a, steps=20).distances
            )
        methods = [
            attributions.Saliency(),
            attributions.IntegratedGradients(n_steps=10),
            attributions.GradCam(),
        ]
        shift = experiments.explanation_shift(net, x, y, methods, eps=0.05)
        f["shift"] = {k: digest(v) for k, v in shift.shift.items()}
        f["shift_control"] = {k: digest(v) for k, v in shift.control_shift.items()}
        f["shift_tau"] = {k: [round(float(t), 12) for t in v] for k, v in shift.rank.items()}
    cam = nets["cam_standard"]
    t = (y + 1) % 10
    isa = interpretability_sneaking_attack(
        cam, x[:6], y[:6], t[:6], multiples=(1.0, 2.0), steps=3, search_steps=3
    )
    fp["isa"] = {
        "eps": digest(isa.eps),
        "x_attack": digest(isa.x_attack),
        **{f"{m}_{k}": digest(v) for m, h in isa.hidden.items() for k, v in h.items()},
    }
    ig5 = attributions.IntegratedGradients(n_steps=5)
    topk = topk_attribution_attack(cam, x[:3], eps=0.1, k=50, steps=4, explainer=ig5)
    fp["topk"] = {"x_adv": digest(topk.x_adv), "intersection": digest(topk.intersection)}
    fp["discrepancy"] = {
        m: digest(metrics.discrepancy(cam, x[:6], isa.x_attack, y[:6], measure=m, targets=t[:6]))
        for m in metrics.DISCREPANCY_MEASURES
    }
    if not args.skip_training:
        fp["one_epoch"] = {}
        for name in recipes.recipe_names():
            model, history = zoo.train_recipe(recipes.recipe("mnist5k", name, num_epochs=1), progress=False)
            fp["one_epoch"][name] = {
                "weights": state_digest(model),
                "history": digest({k: v for k, v in history[-1].items() if k != "seconds"}),
            }
            print(name, fp["one_epoch"][name], flush=True)
    Path(args.out).write_text(json.dumps(fp, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
