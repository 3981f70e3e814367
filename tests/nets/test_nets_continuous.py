"""ContinuousNet: Euler + pc is the pre-activation ResNet, units, manifest, refine, bad input."""

import pytest
import torch

from partime.nets import ContinuousNet, ContinuousNetConfig, PreActResNet, ResNetConfig

SHAPES = {"image": (1, 8, 8), "signal": (2, 12), "features": (6,)}


def make_net(shape, **kwargs):
    torch.manual_seed(0)
    return ContinuousNet(ContinuousNetConfig(shape, 3, width=4, **kwargs)).double()


def randomize_statistics(net):
    with torch.no_grad():
        for buffer in net.buffers():
            if buffer.is_floating_point():
                buffer.uniform_(0.5, 1.5)


def resnet_with_the_same_weights(net):
    """The PreActResNet 'p+1' blocks per stage holding the ContinuousNet's weights."""
    config = net.config
    blocks = "-".join(str(p + 1) for p in config.pieces)
    resnet = PreActResNet(ResNetConfig(config.input_shape, config.n_classes, blocks, config.width))
    resnet = resnet.double()
    resnet.stem.load_state_dict(net.stem.state_dict())
    resnet.head.load_state_dict(net.head.state_dict())
    index = 0
    for stitch, block in zip(net.stitches, net.blocks, strict=True):
        resnet.blocks[index].load_state_dict(stitch.state_dict())
        for k in range(block.n_pieces):
            piece = {name: t[k] for name, t in block.coefficients.state_dict().items()}
            resnet.blocks[index + 1 + k].branch.load_state_dict(piece)
        index += 1 + block.n_pieces
    return resnet


@pytest.mark.parametrize("kind", sorted(SHAPES))
@pytest.mark.parametrize("training", [True, False])
def test_euler_piecewise_constant_net_is_the_preact_resnet(kind, training):
    net = make_net(SHAPES[kind], units="2-1-3")
    randomize_statistics(net)
    resnet = resnet_with_the_same_weights(net)
    net.train(training)
    resnet.train(training)
    x = torch.randn(5, *SHAPES[kind], dtype=torch.float64)
    torch.testing.assert_close(net(x), resnet(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_units_fold_to_the_forward_pass(kind):
    net = make_net(SHAPES[kind], units="1-2", scheme="midpoint", n_steps=3)
    units = net.units()
    names = [u.name for u in units]
    assert names == ["stem", "stage0.stitch", "stage0.step0", "stage0.step1", "stage0.step2"] + [
        "stage1.stitch",
        "stage1.step0",
        "stage1.step1",
        "stage1.step2",
        "head",
    ]
    assert all(u.cost > 0 for u in units)
    # a midpoint step evaluates R twice: twice the stitch's branch cost on the same width
    assert units[2].cost == pytest.approx(2 * units[1].cost, rel=0.01)
    x = torch.randn(4, *SHAPES[kind], dtype=torch.float64)
    net.eval()
    state = x
    for unit in units:
        state = unit(state)
    torch.testing.assert_close(state, net(x), atol=0, rtol=0)
    assert net.training is False


def test_manifest_shares_parameters_and_changes_only_the_discretization():
    net = make_net((1, 8, 8), units="2-2", basis="fem", scheme="rk4")
    coarse = net.manifest("euler", (1, 3))
    assert [b.n_steps for b in coarse.blocks] == [1, 3] and coarse.config.scheme == "euler"
    assert [b.n_steps for b in net.blocks] == [2, 2] and net.config.scheme == "rk4"
    for (name, a), b in zip(net.state_dict().items(), coarse.state_dict().values(), strict=True):
        assert a.data_ptr() == b.data_ptr(), name
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    net.eval()
    back = coarse.manifest("rk4", 2).eval()
    torch.testing.assert_close(back(x), net(x), atol=0, rtol=0)
    assert not torch.allclose(coarse.eval()(x), net(x))
    # the manifested net rebuilds from its config and the shared state
    rebuilt = ContinuousNet(coarse.config).double().eval()
    rebuilt.load_state_dict(coarse.state_dict())
    torch.testing.assert_close(rebuilt(x), coarse(x), atol=0, rtol=0)


@pytest.mark.parametrize("basis", ["pc", "linear", "fem"])
def test_refine_during_training_leaves_the_loss_unchanged(basis):
    net = make_net((2, 12), units="1-2", basis=basis, scheme="rk38")
    x = torch.randn(8, 2, 12, dtype=torch.float64)
    labels = torch.randint(0, 3, (8,))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), labels).backward()
        optimizer.step()
    refined = net.refine()
    assert refined.config.units == "2-4" and refined.config.n_steps == (1, 2)
    # eval first: a training forward then updates running statistics per piece, and the stages
    # of one old piece now split over two pieces
    for mode in (False, True):
        net.train(mode)
        refined.train(mode)
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        torch.testing.assert_close(
            torch.nn.functional.cross_entropy(refined(x), labels), loss, atol=1e-12, rtol=0
        )


def test_refinement_with_double_steps_keeps_one_step_per_piece():
    net = make_net((1, 8, 8), units="1-2", refine_steps="double")
    refined = net.refine()
    assert refined.config.units == "2-4" and refined.config.n_steps == (2, 4)
    assert [b.n_steps for b in refined.blocks] == [2, 4]
    assert refined.config.epsilon == (1.0, 2.0)  # the same ODE, twice the steps
    kept = net.refine(double_steps=False)
    assert [b.n_steps for b in kept.blocks] == [1, 2]
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    net.eval()
    refined.eval()
    assert not torch.allclose(refined(x), net(x))
    rebuilt = ContinuousNet(refined.config).double().eval()
    rebuilt.load_state_dict(refined.state_dict())
    torch.testing.assert_close(rebuilt(x), refined(x), atol=0, rtol=0)


def test_gradients_match_finite_differences():
    net = make_net((3,), units="1-1", scheme="rk4", basis="linear")
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": "2-x-2"}, "units .*'2-x-2'"),
        ({"units": ""}, "units .*''"),
        ({"units": "2--2"}, "'2--2'"),
        ({"units": "0-1"}, "'0-1'"),
        ({"scheme": "rk5"}, "'rk5'"),
        ({"basis": "spline"}, "'spline'"),
        ({"n_steps": (1, 2)}, "2 entries for 3 stages"),
        ({"width": 0}, "width=0"),
        ({"refine_steps": "triple"}, "'triple'"),
    ],
)
def test_bad_configuration_names_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContinuousNetConfig((1, 8, 8), 10, **kwargs)


def test_input_that_does_not_match_the_stem():
    net = make_net((1, 8, 8))
    with pytest.raises(ValueError, match=r"\(batch, 1, 8, 8\).*got \(2, 3, 32, 32\)"):
        net(torch.zeros(2, 3, 32, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match="input_shape"):
        ContinuousNetConfig((1, 2, 3, 4), 10)
