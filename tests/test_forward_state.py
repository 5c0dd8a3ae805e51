"""No module of either model keeps a tensor on `self` during a forward pass: modules pass data to
each other explicitly, and observers read intermediate results through forward hooks on taps
(`zsl_lib.recording`)."""
import pytest
import timm
import torch

import zsl_lib  # noqa: F401  registers the toy models
from zsl_lib import mgmrn, vspcn

MODELS = {
    "vspcn paper_default": (vspcn.VSPCN, "toy_vit_hybrid_64", vspcn.preset("paper_default")),
    "vspcn code_exact": (vspcn.VSPCN, "toy_vit_hybrid_64", vspcn.preset("code_exact")),
    "mgmrn paper": (mgmrn.MgMRN, "toy_resnet_nopool_64", mgmrn.preset("paper")),
    "mgmrn official_code": (mgmrn.MgMRN, "toy_resnet_nopool_64", mgmrn.preset("official_code")),
    "mgmrn part_tokens": (mgmrn.MgMRN, "toy_resnet_nopool_64", mgmrn.preset("paper", rfm_mode="part_tokens")),
    "mgmrn part_channels, w/o SCAB": (mgmrn.MgMRN, "toy_resnet_nopool_64",
                                      mgmrn.preset("paper", rfm_mode="part_channels", mrm="concat_only")),
    "mgmrn without MgM": (mgmrn.MgMRN, "toy_resnet_nopool_64", mgmrn.table3_row(1)),
}


def tensor_attributes(model: torch.nn.Module) -> dict[tuple, int]:
    """(module name, attribute, index...) -> id of every tensor a module holds, directly or inside a
    tuple, list or dict (its parameters and buffers included; an in-place update keeps the id)."""
    found = {}

    def visit(key: tuple, value) -> None:
        if isinstance(value, torch.Tensor):
            found[key] = id(value)
        elif isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                visit(key + (i,), item)
        elif isinstance(value, dict):
            for k, item in value.items():
                visit(key + (k,), item)

    for name, module in model.named_modules():
        for attribute, value in vars(module).items():
            if attribute != "_modules":
                visit((name, attribute), value)
    return found


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_passes_write_no_tensor_to_any_module(name):
    model_class, backbone, cfg = MODELS[name]
    torch.manual_seed(0)
    model = model_class(timm.create_model(backbone, num_classes=0), torch.randn(6, 12), torch.rand(10, 6),
                        torch.arange(7), cfg)
    x, labels = torch.randn(2, 3, 64, 64), torch.tensor([1, 5])
    before = tensor_attributes(model)
    model.training_losses(x, labels)["total"].backward()          # training mode
    with torch.no_grad():
        model.eval()(x)
    after = tensor_attributes(model)
    assert {k for k in after if after[k] != before.get(k)} == set()
