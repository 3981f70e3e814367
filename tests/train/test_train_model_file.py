"""Model files: a saved network rebuilds itself (class, config, weights, dtype) and gives the
same outputs; files that are not model files, or name code outside partime, are refused."""

from __future__ import annotations

import pytest
import torch

from partime.io.atomic import atomic_save
from partime.nets.continuous import ContinuousNet, ContinuousNetConfig
from partime.train.model_file import MODEL_FORMAT, load_model, save_model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_saved_network_rebuilds_with_the_same_outputs(tmp_path, dtype):
    torch.manual_seed(0)
    config = ContinuousNetConfig(input_shape=(1, 12), n_classes=3, units="1-2", width=4,
                                 scheme="rk4", basis="fem")  # fmt: skip
    net = ContinuousNet(config).refine().to(dtype)
    net.train()
    net(torch.randn(16, 1, 12, dtype=dtype))  # move the batch-norm statistics off their init
    net.eval()
    save_model(tmp_path / "m.pt", net, {"data": {"data": "mnist1d"}, "shape": (1, 12)})
    loaded, metadata = load_model(tmp_path / "m.pt")
    assert type(loaded) is ContinuousNet and loaded.config == net.config
    assert loaded.config.units == "2-4" and metadata == {
        "data": {"data": "mnist1d"},
        "shape": [1, 12],
    }
    x = torch.randn(5, 1, 12, dtype=dtype)
    loaded.eval()
    assert torch.equal(loaded(x), net(x))


def test_bad_model_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "none.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="text.pt is not a partime model file"):
        load_model(tmp_path / "text.pt")
    atomic_save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format 'other'"):
        load_model(tmp_path / "other.pt")
    foreign = {"format": MODEL_FORMAT, "class": "os:system", "config_class": "os:system"}
    atomic_save({**foreign, "config": {}, "state_dict": {}, "metadata": {}}, tmp_path / "os.pt")
    with pytest.raises(ValueError, match="refers to 'os:system', not a partime class"):
        load_model(tmp_path / "os.pt")
    with pytest.raises(ValueError, match="no dataclass ``config``"):
        save_model(tmp_path / "x.pt", torch.nn.Linear(2, 2))
