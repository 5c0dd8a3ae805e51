"""VSPCN: shapes, trainable groups, presets, Table 2 switches, and the losses by hand."""
import math

import pytest
import timm
import torch

from zsl_lib.vspcn import VSPCN, AttentionRecorder, LossWeights, VSPCNConfig, preset, svpf_drift, table2_row
from zsl_lib.recording import recorded
from zsl_lib.vspcn import fusion, losses

A, C, C_S, D_W = 6, 10, 7, 12


def make(cfg: VSPCNConfig, seed: int = 0) -> VSPCN:
    torch.manual_seed(seed)
    backbone = timm.create_model("toy_vit_hybrid_64", num_classes=0)
    return VSPCN(backbone, torch.randn(A, D_W), torch.rand(C, A), torch.arange(C_S), cfg)


def test_fusion_module_shapes():
    B, N, D = 2, 9, 8
    prompt, patches = torch.randn(1, D), torch.randn(B, N, D)
    assert fusion.WeakVisualPromptFusion(D)(prompt, patches).shape == (B, 1, D)
    assert fusion.WeakSemanticPromptFusion(D)(prompt, torch.randn(A, D)).shape == (1, D)
    svpf = fusion.StrongVisualPromptFusion(D, N, alpha=0.05, rho=0.9)
    adapter = fusion.SemanticAdapter(D, beta=0.5)
    sspf = fusion.StrongSemanticPromptFusion(D, A, alpha=0.8)
    with recorded(svpf.attention_map) as svpf_maps, recorded(adapter.attention_map) as adapter_maps, \
            recorded(sspf.attention_map) as sspf_maps:
        assert svpf(torch.randn(B, 1, D), patches).shape == (B, 1, D)
        assert adapter(torch.randn(B, A, D), patches).shape == (B, A, D)
        assert sspf(torch.randn(B, 1, D), torch.randn(B, A, D)).shape == (B, 1, D)
    assert svpf_maps[0].shape == (B, 1, N) and adapter_maps[0].shape == (B, A, N) and sspf_maps[0].shape == (B, 1, A)
    torch.testing.assert_close(sspf_maps[0].sum(-1), torch.ones(B, 1))


def test_svpf_and_sspf_equations():
    """Eqs. (5)-(8) against a direct computation."""
    torch.manual_seed(0)
    B, N, D = 2, 5, 4
    svpf = fusion.StrongVisualPromptFusion(D, N, alpha=0.3, rho=0.9, init="trunc_normal")
    torch.nn.init.normal_(svpf.bias)
    f, F_ = torch.randn(B, 1, D), torch.randn(B, N, D)
    q, k, v = f @ svpf.q.weight.T, F_ @ svpf.k.weight.T, F_ @ svpf.v.weight.T
    attn = 0.3 * torch.softmax(q @ k.transpose(1, 2) / 2.0, -1) + 0.7 * torch.softmax(svpf.bias, -1)
    torch.testing.assert_close(svpf(f, F_), 0.9 * f + 0.1 * attn @ v)
    for residual, keep in (("double", 2.0), ("single", 1.0)):
        sspf = fusion.StrongSemanticPromptFusion(D, A, alpha=0.8, residual=residual)
        s = torch.randn(B, A, D)
        q, k, v = sspf.q(f), sspf.k(s), sspf.v(s)
        attn = 0.8 * torch.softmax(q @ k.transpose(1, 2) / 2.0, -1) + 0.2 * torch.softmax(sspf.bias, -1)
        torch.testing.assert_close(sspf(f, s), keep * f + attn @ v)


def test_trainable_parameters_on_vit_b_with_cub_sizes():
    """paper_default on ViT-B/16 with A = 312, d_w = 300, C_s = 150: the spec's about 35.6 M.

    By hand: CLS 768 + positions 197*768 + prompt positions 2*768 + P_v 768 + WVPF 3*(768^2+768)
    + P_s 768 + W_g 300*768 + WSPF (LN 1536 + shared 768^2 + out 768^2+768)
    + 6 strong steps * (SVPF 3*768^2 + B_v 196 + adapter 3*(768^2+768) + SSPF 3*(768^2+768) + B_s 312)
    + phi 312*768+768 + Phi 768*150 = 35,576,040.
    """
    backbone = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    model = VSPCN(backbone, torch.zeros(312, 300), torch.zeros(200, 312), torch.arange(150), preset("paper_default"))
    n = sum(p.numel() for p in model.trainable_parameters().values())
    print(f"VSPCN paper_default trainable parameters on ViT-B/16, CUB sizes: {n / 1e6:.2f} M")
    assert n == 35_576_040
    assert model.num_shallow == 6 and len(model.strong_steps) == 6


@pytest.mark.parametrize("row", range(1, 9))
def test_every_table2_row_runs(row):
    model = make(table2_row(row))
    cfg = model.cfg
    x = torch.randn(2, 3, 64, 64)
    tokens = model.forward_features(x)
    assert model.num_prefix_tokens == 1 + int(cfg.vp) + int(cfg.sp)
    assert tokens.shape == model.input_tokens(x)[0].shape == (2, model.num_prefix_tokens + 64, 192)   # (B, 1 + P + N, D)
    feats = model.prefix_outputs(tokens)
    assert list(feats) == ["cls"] + (["vp"] if cfg.vp else []) + (["sp"] if cfg.sp else [])
    assert all(v.shape == (2, 192) for v in feats.values())
    assert model.forward_head(tokens).shape == (2, C)
    torch.testing.assert_close(model.forward_head(tokens, pre_logits=True), feats["cls"])


def _grads_after_step(model):
    x, y = torch.randn(3, 3, 64, 64), torch.tensor([0, 3, 6])
    model.training_losses(x, y)["total"].backward()
    return {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


def test_training_step_reaches_exactly_the_trainable_groups():
    model = make(preset("paper_default"))
    frozen = {k: v.clone() for k, v in model.vit.state_dict().items() if k not in ("cls_token", "pos_embed")}
    opt = torch.optim.Adam(model.trainable_parameters().values(), lr=1e-3)
    first = _grads_after_step(model)
    # step 1: SVPF's V starts at zero, so A V = 0 and the learned bias B_v gets no gradient yet
    assert {n for n, g in first.items() if not g.abs().sum() > 0} == \
        {f"strong_steps.{i}.svpf.{w}" for i in range(3) for w in ("q.weight", "k.weight", "bias")}
    opt.step()
    opt.zero_grad()
    grads = _grads_after_step(model)
    opt.step()
    # the frozen backbone: no parameter of it trains, and its weights are bit-identical after the step
    assert all(not p.requires_grad for n, p in model.vit.named_parameters() if n not in ("cls_token", "pos_embed"))
    for k, v in model.vit.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    zero = {n for n, g in grads.items() if g is None or not g.abs().sum() > 0}
    # step 2: only SVPF's W_q and W_k still get none, and never will (zero-initialised Q and K)
    assert zero == {f"strong_steps.{i}.svpf.{w}.weight" for i in range(3) for w in ("q", "k")}
    groups = {n.split(".")[0] if not n.startswith("strong_steps") else ".".join(n.split(".")[2:4])
              for n in grads if n not in zero}
    assert groups == {"vit", "prompt_pos_embed", "visual_prompt", "wvpf", "vp_classifier", "semantic_prompt",
                      "word_projection", "wspf", "attribute_projection", "svpf.v", "svpf.bias", "adapter.q",
                      "adapter.k", "adapter.v", "sspf.q", "sspf.k", "sspf.v", "sspf.bias"}


def test_code_exact_differs_where_the_spec_says():
    code, paper = make(preset("code_exact")), make(preset("paper_default"))
    # 13-block layout: one extra, random, frozen block; strong fusion before 0-based blocks 4..6 here
    assert len(code.blocks) == len(paper.blocks) + 1 == 7 and code.num_shallow == 4 and paper.num_shallow == 3
    assert all(not p.requires_grad for p in code.extra_block.parameters())
    # the visual prompt is not trained (the code never registers it)
    assert "visual_prompt" not in code.trainable_parameters() and "visual_prompt" in paper.trainable_parameters()
    # SVPF attention stays exactly uniform + bias after training steps (zero-initialised Q, K)
    opt = torch.optim.Adam(code.trainable_parameters().values(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        _grads_after_step(code)
        opt.step()
    with AttentionRecorder(code) as rec:
        code.forward_features(torch.randn(2, 3, 64, 64))
    for step, svpf_attention in zip(code.strong_steps, rec.fusion["svpf"]):
        assert step.svpf.q.weight.abs().sum() == 0 and step.svpf.k.weight.abs().sum() == 0
        expected = 0.05 / 64 + 0.95 * torch.softmax(step.svpf.bias, -1)
        torch.testing.assert_close(svpf_attention, expected.expand(2, 1, 64))
    # batch-mean adapter: an image's semantic prompt depends on the rest of its batch; per-instance does not
    x = torch.randn(3, 3, 64, 64)
    for model, shared in ((code, True), (paper, False)):
        with torch.no_grad():
            a = model.forward_features(torch.stack([x[0], x[1]]))[0, model.prefix_index["sp"]]
            b = model.forward_features(torch.stack([x[0], x[2]]))[0, model.prefix_index["sp"]]
        assert ((a - b).abs().max().item() > 1e-4) == shared


def test_svpf_trunc_normal_option_learns_attention():
    grads = _grads_after_step(make(preset("paper_default", svpf_init="trunc_normal")))
    assert grads["strong_steps.0.svpf.q.weight"].abs().sum() > 0


def test_svpf_drift_reads_the_largest_query_key_and_bias_entries():
    model = make(preset("paper_default"))
    assert svpf_drift(model.state_dict()) == {"qk": 0.0, "bias": 0.0, "steps": len(model.strong_steps)}
    with torch.no_grad():
        model.strong_steps[1].svpf.bias[0, 3] = -0.25
        model.strong_steps[2].svpf.k.weight[0, 1] = 0.5
    assert svpf_drift(model.state_dict()) == {"qk": 0.5, "bias": 0.25, "steps": len(model.strong_steps)}


def test_adapter_off_reads_static_attributes():
    """Without the adapter (row 7) every strong step's SSPF reads S^0 = G W_g, the same for every
    image; with it (row 8) SSPF reads attribute tokens adapted to each image."""
    x = torch.randn(2, 3, 64, 64)
    for row, adapted in ((7, False), (8, True)):
        model = make(table2_row(row))
        read = []                                                      # S^l that each SSPF reads, (B, A, D)
        handles = [step.sspf.register_forward_pre_hook(lambda module, inputs: read.append(inputs[1]))
                   for step in model.strong_steps]
        with torch.no_grad():
            model(x)
            static = model.attribute_tokens().expand(len(x), -1, -1)   # S^0, (B, A, D)
        for handle in handles:
            handle.remove()
        assert len(read) == len(model.strong_steps) == 3
        for attributes in read:
            assert torch.equal(attributes, static) != adapted
            assert torch.equal(attributes[0], attributes[1]) != adapted   # the same for both images unless adapted


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="sp_residual='triple'"):
        VSPCNConfig(sp_residual="triple")
    with pytest.raises(ValueError, match="need the visual prompt"):
        VSPCNConfig(vp=False)
    with pytest.raises(ValueError, match="unknown VSPCN preset 'paper'"):
        preset("paper")
    with pytest.raises(ValueError, match="Table 2 has rows 1-8"):
        table2_row(9)
    assert preset("paper_default").for_dataset("AWA2").rho_v == 0.1


# ---- losses by hand -------------------------------------------------------------------------
W = LossWeights()


def test_base_loss_by_hand():
    t = losses.base_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), torch.tensor([[3.0, 4.0]]),
                         torch.zeros(1, 2), W)
    ce = math.log(1 + math.exp(-2))                           # -log(e^2 / (e^2 + e^0))
    assert t["cls"].item() == pytest.approx(ce)
    assert t["sr"].item() == pytest.approx(5.0)               # ||(3, 4)||, not squared (code)
    assert t["base"].item() == pytest.approx(ce + 0.01 * 5.0)
    mse = losses.base_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), torch.tensor([[3.0, 4.0]]),
                           torch.zeros(1, 2), LossWeights(sr_form="mse"))
    assert mse["sr"].item() == pytest.approx(25.0)


def test_ced_loss_by_hand():
    scores, vp_logits, label = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([0])
    cls = math.log(1 + math.exp(-2))
    p = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]   # softmax of the CLS scores
    kl = sum(pi * math.log(pi / 0.5) for pi in p)                   # KL(p || uniform)
    ce = math.log(2)
    ed = math.log(1 + (cls + ce) / (kl + 1e-6))
    t = losses.ced_loss(scores, vp_logits, label, torch.tensor(cls), W)
    assert t["kl_cls_vp"].item() == pytest.approx(kl, rel=1e-5)
    assert t["ed"].item() == pytest.approx(ed, rel=1e-5)
    assert t["ced"].item() == pytest.approx(0.05 * ed + 0.5 * ce, rel=1e-5)
    # identical predictions: KL = 0, and the eps keeps L_ED finite
    same = losses.ced_loss(scores, scores, label, torch.tensor(cls), W)
    assert torch.isfinite(same["ed"]) and same["kl_cls_vp"].abs().item() < 1e-6


def test_skd_loss_by_hand():
    z_sp, proto = torch.tensor([[0.0, math.log(3.0)]]), torch.zeros(1, 2)   # softmax: (1/4, 3/4) and (1/2, 1/2)
    p, q = [0.25, 0.75], [0.5, 0.5]
    kl = lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b))
    t = losses.skd_loss(z_sp, proto, W)
    assert t["skd_div"].item() == pytest.approx(0.5 * kl(p, q) + 0.5 * kl(q, p), rel=1e-5)
    assert t["skd_l2"].item() == pytest.approx(math.log(3.0), rel=1e-6)
    m = [(x + y) / 2 for x, y in zip(p, q)]
    jsd = losses.skd_loss(z_sp, proto, LossWeights(skd_divergence="jsd"))
    assert jsd["skd_div"].item() == pytest.approx(0.5 * kl(p, m) + 0.5 * kl(q, m), rel=1e-5)


def test_total_loss_weights_and_switches():
    feats = {"cls": torch.randn(2, 4), "sp": torch.randn(2, 4), "vp": torch.randn(2, 4)}
    scores, vp_logits, proto, y = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 4), torch.tensor([0, 2])
    t = losses.total_loss(feats, scores, vp_logits, proto, y, W)
    torch.testing.assert_close(t["total"], t["base"] + 0.8 * t["ced"] + 0.18 * t["skd"])
    base_only = losses.total_loss({"cls": feats["cls"]}, scores, None, proto, y, W)
    assert set(base_only) == {"cls", "sr", "base", "total"}
    torch.testing.assert_close(base_only["total"], base_only["base"])


# ---- the attention recorder -------------------------------------------------------------------
def test_recorder_shapes_and_fusion_maps():
    model = make(preset("paper_default")).eval()
    with AttentionRecorder(model) as rec:
        with torch.no_grad():
            model(torch.randn(2, 3, 64, 64))
    assert len(rec.blocks) == 6 and rec.blocks[0].shape == (2, 3, 67, 67)     # (B, heads, T, T)
    for token in ("cls", "vp", "sp"):
        maps = rec.token_to_patches(token)
        assert maps.shape == (6, 2, 3, 64)                                     # (L, B, heads, N)
        assert (maps.sum(-1) <= 1 + 1e-5).all()
    fusion = rec.fusion
    assert fusion["wvpf"].shape == (2, 1, 64) and fusion["wspf"].shape == (1, A)
    assert fusion["svpf"].shape == (3, 2, 1, 64) and fusion["adapter"].shape == (3, 2, A, 64)
    assert fusion["sspf"].shape == (3, 2, 1, A)
    assert not model.vit.blocks[0].attn.qkv._forward_hooks    # hooks removed on exit
    with pytest.raises(ValueError, match="no 'vp' token"):
        AttentionRecorder(make(table2_row(1))).token_index("vp")


def test_recorded_attention_is_the_blocks_own():
    """softmax(q k^T * scale) from the hooked qkv, applied to v, reproduces the block's attention output."""
    model = make(preset("paper_default")).eval()
    attn = model.blocks[2].attn
    seen = {}
    handle = attn.register_forward_hook(lambda m, i, o: seen.update(x=i[0], out=o))
    with AttentionRecorder(model) as rec, torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    handle.remove()
    with torch.no_grad():
        B, T, D = seen["x"].shape
        v = attn.qkv(seen["x"]).reshape(B, T, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)[2]
        mixed = (rec.blocks[2] @ v).transpose(1, 2).reshape(B, T, D)
        torch.testing.assert_close(attn.proj(attn.norm(mixed)), seen["out"], rtol=1e-4, atol=1e-5)
