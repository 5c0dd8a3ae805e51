"""The architecture diagrams read their placements from the configurations."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from zsl_lib import diagrams  # noqa: E402
from zsl_lib.mgmrn.config import preset as mgmrn_preset, table3_row  # noqa: E402
from zsl_lib.vspcn.config import preset as vspcn_preset, table2_row  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def bold_block_numbers(fig) -> list[int]:
    """The block numbers drawn in bold: the blocks a strong step precedes."""
    return sorted(int(t.get_text()) for t in fig.axes[0].texts
                  if t.get_text().isdigit() and t.get_fontweight() == "bold")


def expected_strong_blocks(cfg, depth=12) -> list[int]:
    """1-based blocks after the first K, as the model builds its strong steps."""
    return list(range(cfg.shallow_blocks(depth) + 1, cfg.num_blocks(depth) + 1))


def test_paper_default_diagram_marks_strong_fusion_before_blocks_7_to_12():
    cfg = vspcn_preset("paper_default")
    fig = diagrams.vspcn_diagram(cfg)
    assert expected_strong_blocks(cfg) == list(range(7, 13))
    assert bold_block_numbers(fig) == list(range(7, 13))
    labels = texts(fig)
    assert labels.count("SVPF") == labels.count("SSPF") == labels.count("adapter") == 6
    assert "1-6" in labels
    assert any("strong fusion before blocks 7-12" in t for t in labels)


@pytest.mark.parametrize("cfg", [vspcn_preset("paper_default", num_shallow=8), vspcn_preset("code_exact"),
                                 vspcn_preset("paper_default", num_shallow=3)])
def test_vspcn_diagram_follows_the_configured_placement(cfg):
    fig = diagrams.vspcn_diagram(cfg)
    strong = expected_strong_blocks(cfg)
    assert bold_block_numbers(fig) == strong
    assert texts(fig).count("SVPF") == len(strong)
    assert any(f"strong fusion before blocks {strong[0]}-{strong[-1]}" in t for t in texts(fig))


def test_code_exact_diagram_draws_the_random_13th_block_hatched():
    fig = diagrams.vspcn_diagram(vspcn_preset("code_exact"))
    hatched = [p for p in fig.axes[0].patches if p.get_hatch()]
    assert len(hatched) == 1 and "13" in texts(fig)
    assert any("never trained" in t for t in texts(fig))


def test_switched_off_modules_disappear_from_the_vspcn_diagram():
    no_adapter = texts(diagrams.vspcn_diagram(vspcn_preset("paper_default", adapter=False)))
    assert no_adapter.count("adapter") == 0 and no_adapter.count("SSPF") == 6
    weak_only = diagrams.vspcn_diagram(table2_row(5))
    assert bold_block_numbers(weak_only) == [] and "SVPF" not in texts(weak_only)
    assert "1-12" in texts(weak_only) and any("before blocks none" in t for t in texts(weak_only))
    baseline = texts(diagrams.vspcn_diagram(table2_row(1)))
    assert not any("L_{CED}" in t or "L_{SKD}" in t or "WVPF" in t for t in baseline)
    assert any("L_{BASE}" in t for t in baseline)


def test_vspcn_token_layout_is_cls_visual_semantic_patches_left_to_right():
    fig = diagrams.vspcn_diagram()
    top_row = sorted((t.get_position()[0], t.get_text()) for t in fig.axes[0].texts if t.get_position()[1] == 6.2)
    assert [text for _, text in top_row] == ["CLS", r"$\hat P_v$", r"$\hat P_s$", "$F^0$: N image patch tokens"]


def test_vspcn_diagram_depth_follows_the_backbone():
    cfg = vspcn_preset("paper_default")
    fig = diagrams.vspcn_diagram(cfg, depth=6)                # the toy ViT's six blocks
    assert bold_block_numbers(fig) == [4, 5, 6] == expected_strong_blocks(cfg, depth=6)


@pytest.mark.parametrize("cfg", [mgmrn_preset("paper"), mgmrn_preset("paper", "SUN"), table3_row(1),
                                 mgmrn_preset("official_code", "CUB")])
def test_mgmrn_diagram_draws_one_column_per_level(cfg):
    fig = diagrams.mgmrn_diagram(cfg)
    levels = cfg.num_levels if cfg.mgm else 1                           # by hand: MgMRNConfig.num_stages
    assert cfg.num_stages == levels
    labels = texts(fig)
    assert sum(t.startswith("VSD") for t in labels) == levels
    assert sum("L_{SCE}" in t for t in labels) == levels + 1            # one per stage, and the total
    decoded = [t for t in labels if ": stage " in t]
    assert decoded == [f"{name}: stage {k}" for k, name in enumerate(diagrams.RESNET_STAGES[-levels:], start=1)]
    assert any(t.startswith(f"L = {levels} stage(s)") for t in labels)


def test_mgmrn_diagram_shows_the_scab_only_where_the_configuration_has_one():
    full = texts(diagrams.mgmrn_diagram(mgmrn_preset("paper")))
    assert sum(t.startswith("SCAB") for t in full) == 2                 # stages 1 and 2 of L = 3; none for stage L
    without_mrm = texts(diagrams.mgmrn_diagram(table3_row(4)))
    assert not any(t.startswith("SCAB") for t in without_mrm)
    without_rfmb = texts(diagrams.mgmrn_diagram(table3_row(3)))
    assert sum(t.startswith("no RFMB") for t in without_rfmb) == 3


def test_diagrams_draw_on_a_given_axes_and_return_its_figure():
    fig, ax = plt.subplots()
    assert diagrams.mgmrn_diagram(ax=ax) is fig
    fig2, ax2 = plt.subplots()
    assert diagrams.vspcn_diagram(ax=ax2) is fig2 and not ax2.axison
