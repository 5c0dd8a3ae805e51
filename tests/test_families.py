"""The model-family registry: a third family, added through the registry alone, trains through the
command line and the ToyBirds protocol and is evaluated; the built-in families' options."""
import json
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
import yaml

from zsl_lib import cli, experiment, families, provenance, runconfig
from zsl_lib.pixels import TOY


@dataclass(frozen=True)
class LinearHeadConfig:
    scale: float = 10.0          # class scores are `scale` x <predicted attributes, class vector>


class LinearAttributeHead(torch.nn.Module):
    """A linear map from the frozen toy ViT's pooled features to attributes; a class's score is
    the dot product of the predicted attributes with its (L2-normalised) attribute vector."""

    def __init__(self, backbone, word_vectors, class_attributes, seen_classes, cfg: LinearHeadConfig):
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.head = torch.nn.Linear(backbone.num_features, class_attributes.shape[1])
        self.register_buffer("class_attributes", class_attributes.float())       # (C, A)
        self.register_buffer("seen_classes", seen_classes)
        self.cfg = cfg

    def forward(self, x):
        with torch.no_grad():
            features = self.backbone.eval()(x)                                  # (B, D)
        return self.cfg.scale * self.head(features) @ self.class_attributes.T   # (B, C)

    def training_losses(self, x, labels):
        return {"total": F.cross_entropy(self(x)[:, self.seen_classes], labels)}


@pytest.fixture
def linear_family():
    family = families.register(families.Family(
        name="linear_head", model_class=LinearAttributeHead, presets={"default": LinearHeadConfig()},
        default_preset="default", toy_backbone="toy_vit_hybrid_64",
        recipe=dict(steps=60, batch_size=32, lr=1e-2, device="cpu", log_every=1000),
        quick_steps={"smoke": dict(steps=30)}, own_calibration="stacking",
        real_input=families.RealInput(224, TOY, "none")))
    yield family
    families.unregister(family.name)


def test_a_third_family_trains_through_the_cli_and_the_protocol_and_is_evaluated(linear_family, tmp_path, capsys):
    config = tmp_path / "linear.yaml"
    config.write_text(yaml.safe_dump({
        "model": "linear_head", "preset": "default", "model_options": {"scale": 8.0},
        "data": {"dataset": "toybirds", "size": "smoke"},
        "train": {"steps": 24, "batch_size": 32, "lr": 0.01, "device": "cpu", "log_every": 1000}}))
    run_dir = tmp_path / "run"
    cli.main(["train", "--config", str(config), "--run-dir", str(run_dir)])
    trained = json.loads(capsys.readouterr().out.splitlines()[-1])
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    assert [(e["epoch"], e["H"]) for e in epochs] == [(1, trained["H"])]                    # 24 steps an epoch
    assert trained["loss_last"] < trained["loss_first"] and trained["H"] > 20              # it learned
    result = provenance.load_json(run_dir / "result.json")
    assert result["config"]["model"] == "linear_head" and result["config"]["model_options"] == {"scale": 8.0}

    cli.main(["evaluate", "--checkpoint", str(run_dir / "best.pt")])
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["H"] == trained["H"] and evaluated["gamma"] == trained["gamma"]      # the best epoch, re-scored

    out = tmp_path / "protocol.json"
    experiment.main(linear_family, ["--mode", "smoke", "--steps", "30", "--out", str(out)])
    record = provenance.load_json(out)
    assert record["name"] == "linear_head_smoke" and record["config"]["model"] == {"scale": 10.0}
    metrics = record["metrics"]
    assert metrics["T1"] > 2 * metrics["chance_T1"]                   # unseen classes recognised: it learned
    assert {"H", "H_val", "stacking_H", "stacking_gamma"} <= set(metrics)
    model, world = linear_family.load_trained(record, out.with_suffix(".pt"))
    assert torch.equal(model.head.weight, torch.load(out.with_suffix(".pt"))["head.weight"])


def test_a_family_is_known_only_while_registered(linear_family):
    assert "linear_head" in families.names() and {"vspcn", "mgmrn"} <= set(families.names())
    with pytest.raises(ValueError, match="already registered"):
        families.register(families.Family(**{**linear_family.__dict__, "default_preset": "default"}))
    families.unregister("linear_head")
    with pytest.raises(ValueError, match=r"model = 'linear_head' is not a registered model family; choose one of \['mgmrn', 'vspcn'\]"):
        runconfig.from_dict({"model": "linear_head", "preset": "default"})


def test_options_for_a_nested_section_change_only_the_fields_they_name():
    vspcn = families.get("vspcn")
    assert vspcn.option_sections() == {"losses": type(vspcn.presets["paper_default"].losses)}
    cfg = vspcn.configure("code_exact", "CUB", {"adapter": False, "losses": {"mu_ed": 0.0}})
    base = vspcn.preset("code_exact", "CUB")
    assert cfg.losses.mu_ed == 0.0 and cfg.adapter is False
    assert cfg.losses.lambda_skd == base.losses.lambda_skd and cfg.extra_random_block and cfg.alpha_v == base.alpha_v
    with pytest.raises(ValueError, match=r"model_options.losses \(fields of LossWeights\)"):
        runconfig.from_dict({"model": "vspcn", "model_options": {"losses": {"mu_typo": 1.0}}})
    assert families.get("mgmrn").option_sections() == {}
