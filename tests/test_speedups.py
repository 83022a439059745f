"""Speed views (advexp_lib.speedups): the same function as the network, checked in float64."""

import pytest
import torch
from torch import nn

from advexp_lib import InputError
from advexp_lib.models import CamCNN, PreActResNet, SmallGap, eval_mode
from advexp_lib.speedups import attack_view, cam_view


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_attack_view_folds_smallgap_tail_exactly_as_a_float64_forward(channels, size):
    """The folded affine tail gives the float64 network's logits and input gradients."""
    torch.manual_seed(0)
    m = SmallGap(in_channels=channels)
    with torch.no_grad():
        m.features[4].bias.normal_()  # a conv3 bias the fold must carry through the mean
    x = torch.rand(6, channels, size, size)
    view = attack_view(m, x)
    assert type(view).__name__ == "_FoldedSmallGap"
    ref = m.double()
    x64 = x.double().requires_grad_(True)
    z64 = ref(x64)
    (g64,) = torch.autograd.grad(z64.logsumexp(1).sum(), x64)
    m.float()
    xv = x.clone().requires_grad_(True)
    z = view(xv)
    (g,) = torch.autograd.grad(z.logsumexp(1).sum(), xv)
    assert z.dtype == torch.float32
    torch.testing.assert_close(z.double(), z64.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g.double(), g64, rtol=1e-4, atol=1e-6)
    assert all(p.requires_grad for p in m.parameters()) and m.training  # the model is left as it was
    with pytest.raises(InputError, match="x: the fold was built for features"):
        view(torch.rand(1, channels, size + 8, size + 8))


def test_attack_view_is_a_snapshot_so_later_training_does_not_reach_it():
    torch.manual_seed(0)
    m = SmallGap().eval()
    x = torch.rand(3, 1, 28, 28)
    view = attack_view(m, x)
    before = view(x)
    with torch.no_grad():
        m.classifier.weight.mul_(2.0)
    torch.testing.assert_close(view(x), before)
    assert not torch.allclose(m(x), before)  # the network did change: the test can fail


def test_attack_view_feeds_maxpool_networks_nhwc_and_restores_their_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2), nn.Flatten())
    x = torch.rand(5, 1, 8, 8)
    seen = []
    net[0].register_forward_hook(lambda mod, i, o: seen.append(i[0].stride(1)))
    view = attack_view(net, x)
    with eval_mode(view):
        out = view(x)
    assert seen == [1] and net.training  # NHWC inside; train mode restored after eval_mode(view)
    with eval_mode(net):
        torch.testing.assert_close(out, net(x))
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    assert attack_view(plain, x) is plain


def test_cam_view_keeps_smallgap_logits_and_cam_with_the_head_folded_into_conv3():
    from advexp_lib.attributions import Cam

    torch.manual_seed(0)
    m = SmallGap().eval()
    with torch.no_grad():
        m.features[4].bias.normal_()
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    view = cam_view(m)
    assert view.features[4].out_channels == 10 and view.classifier.weight.shape == (10, 10)
    m64, x64 = m.double(), x.double()
    cam = Cam(upsample=False)
    with torch.no_grad():
        torch.testing.assert_close(view(x).double(), m64(x64), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            cam.attribute(view, x, y).double(), cam.attribute(m64, x64, y), rtol=1e-5, atol=1e-5
        )
    plain = CamCNN()
    assert cam_view(plain) is plain


def test_the_search_feeds_nhwc_to_cpu_networks_with_max_pooling_or_batchnorm_only():
    from advexp_lib.speedups import prefers_nhwc

    x = torch.rand(2, 3, 8, 8)
    assert prefers_nhwc(PreActResNet(8), x)  # BatchNorm, no max-pooling: the published ResNets
    assert prefers_nhwc(nn.Sequential(nn.Conv2d(3, 2, 3), nn.MaxPool2d(2)), x)
    assert not prefers_nhwc(SmallGap(in_channels=3), x)  # neither: fed as given
    assert not prefers_nhwc(nn.Sequential(nn.Flatten(), nn.Linear(192, 3)), x)
