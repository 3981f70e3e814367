"""get_system: built-in names, 'module:function' paths, user callables, and clear errors."""

import pytest
import torch

from partime.dynamics import (
    SYSTEMS,
    CallableField,
    KuramotoSivashinsky,
    Lorenz,
    VanDerPol,
    check_initial_state,
    get_system,
    reference_solution,
)


def decay(t, x):
    return -x


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_every_builtin_name(name):
    field = get_system(name)
    assert isinstance(field, SYSTEMS[name]) and field.name == name
    x = torch.rand(3, field.dim, dtype=torch.float64)
    assert field(0.0, x).shape == (3, field.dim)


def test_dim_checks_and_ks_grid_size():
    assert get_system("lorenz", dim=3).dim == 3
    assert get_system("ks", dim=64).dim == 64
    with pytest.raises(ValueError, match="'vdp' has dimension 2, not dim=3"):
        get_system("vdp", dim=3)
    with pytest.raises(ValueError, match="dim must be a positive integer or None, got 0"):
        get_system("vdp", dim=0)


def test_unknown_name_lists_known_systems():
    with pytest.raises(ValueError, match=r"unknown system 'lorentz'; known systems: cubic, .*vdp"):
        get_system("lorentz")


def test_module_path_to_function_and_class(tmp_path, monkeypatch):
    (tmp_path / "my_fields.py").write_text(
        "import torch\n\ndef rotate(t, x):\n    return torch.stack((-x[..., 1], x[..., 0]), -1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    field = get_system("my_fields:rotate", dim=2)
    assert isinstance(field, CallableField) and field.dim == 2
    ref = reference_solution(field, torch.tensor([[1.0, 0.0]], dtype=torch.float64), [0.0, 1.0])
    assert torch.allclose(
        ref[-1, 0],
        torch.tensor([0.54030230586814, 0.8414709848079], dtype=torch.float64),
        atol=1e-10,
    )
    assert isinstance(get_system("partime.dynamics.systems:Lorenz"), Lorenz)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("partime.dynamics:nothing_here", "has no attribute 'nothing_here'"),
        ("partime.dynamics:", "must look like 'package.module:function'"),
    ],
)
def test_bad_module_paths(spec, match):
    with pytest.raises(ValueError, match=match):
        get_system(spec, dim=2)


def test_user_callable_wrapping_and_shape_errors():
    with pytest.raises(ValueError, match="does not say its dimension; pass dim="):
        get_system(decay)
    field = get_system(decay, dim=4)
    assert field.name == "decay"
    assert torch.equal(field(0.0, torch.ones(2, 4)), -torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"decay: state of shape \(2, 3\) does not match .* 4"):
        field(0.0, torch.ones(2, 3))
    broken = get_system(lambda t, x: x[..., :1], dim=2)
    with pytest.raises(ValueError, match=r"returned \(5, 1\) for a state of shape \(5, 2\)"):
        broken(0.0, torch.ones(5, 2))
    # an object that already is a VectorField passes through; its dim is checked
    vdp = VanDerPol()
    assert get_system(vdp) is vdp
    with pytest.raises(ValueError, match="has dimension 2, not dim=5"):
        get_system(vdp, dim=5)
    with pytest.raises(TypeError, match="must be a name, a 'module:function' path or a callable"):
        get_system(42)


def test_check_initial_state_messages():
    ks = KuramotoSivashinsky(n=8)
    check_initial_state(ks, torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"not finite: x0\[1, 3\] = inf \(1 of 16"):
        check_initial_state(
            ks,
            torch.zeros(2, 8).index_put_(
                (torch.tensor(1), torch.tensor(3)), torch.tensor(float("inf"))
            ),
        )
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        check_initial_state(ks, [0.0] * 8)
    with pytest.raises(TypeError, match="real floating point, got torch.int64"):
        check_initial_state(ks, torch.zeros(8, dtype=torch.int64))
