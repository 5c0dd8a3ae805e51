"""Architecture diagrams of the book's two models, drawn from their configurations.

`vspcn_diagram` draws VSPCN's token lanes through the frozen ViT blocks: where weak fusion
(WVPF, WSPF) writes the input prompts, before which blocks a strong step (SVPF, the semantic
adapter, SSPF) runs, and which loss reads which output token. `mgmrn_diagram` draws Mg-MRN's
ResNet stages and, for every stage the configuration uses, the path RFMB -> D_l -> SCAB ->
visual-semantic decoder -> class scores, the scores summed over stages, and where L_SCE and
L_AR attach. Placements (strong blocks, the number of stages L, the switches) are read from
`VSPCNConfig` / `MgMRNConfig`, so a diagram of an ablation row shows that row's model.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch, Patch

from .mgmrn.config import MgMRNConfig
from .mgmrn.config import preset as mgmrn_preset
from .vspcn.config import VSPCNConfig
from .vspcn.config import preset as vspcn_preset

VIT_B16_DEPTH = 12                                   # blocks of ViT-B/16, VSPCN's backbone
RESNET_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")   # timm's ResNet feature stages
UNUSED = "#ffffff"

FROZEN = "#d9d9d9"
TRAINED = "#cfe2f3"
TOKEN = "#fff2cc"
LOSS = "#f4cccc"
SCORE = "#d9ead3"
BLOCK_WIDTH = 0.3                                    # a ViT block's width in the VSPCN diagram
STEP_WIDTH = 0.6                                     # a strong-step module's box, between two blocks


# ---- drawing primitives ------------------------------------------------------------------
def _box(ax, x: float, y: float, width: float, height: float, text: str, colour: str,
         fontsize: float = 8) -> None:
    """A rounded box centred on (x, y) with centred text."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="0.35", linewidth=0.8, zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=4)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], colour: str = "0.3",
           style: str = "-", curve: float = 0.0, width: float = 0.9) -> None:
    """An arrow from `start` to `end`; `style` is the line style, `curve` bends it (arc3 radius)."""
    ax.annotate("", xy=end, xytext=start, zorder=2,
                arrowprops=dict(arrowstyle="-|>", color=colour, linestyle=style, linewidth=width,
                                shrinkA=0, shrinkB=0, mutation_scale=8,
                                connectionstyle=f"arc3,rad={curve}"))


def _canvas(ax, size: tuple[float, float], xlim: tuple[float, float], ylim: tuple[float, float]):
    """The axes to draw on (a new figure when `ax` is None), with data limits and no frame."""
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return ax


def _span_text(blocks: list[int]) -> str:
    """'7-12' for a run of consecutive block numbers, '7' for one, 'none' for none."""
    if not blocks:
        return "none"
    return str(blocks[0]) if len(blocks) == 1 else f"{blocks[0]}-{blocks[-1]}"


# ---- VSPCN -------------------------------------------------------------------------------
def vspcn_strong_blocks(cfg: VSPCNConfig, depth: int = VIT_B16_DEPTH) -> list[int]:
    """1-based numbers of the blocks that a strong step precedes (the model's `strong_steps`),
    or [] when the configuration has neither SVPF nor SSPF."""
    if not (cfg.svpf or cfg.sspf):
        return []
    return list(range(cfg.shallow_blocks(depth) + 1, cfg.num_blocks(depth) + 1))


class _VSPCNLanes:
    """Heights of the token lanes: the sequence's tokens (CLS, prompts, patches) and, below the
    blocks, the attribute tokens S that live outside the sequence."""

    def __init__(self, cfg: VSPCNConfig):
        names = ["cls"] + ["vp"] * cfg.vp + ["sp"] * cfg.sp + ["patches"]
        self.y = {name: 5.2 - 0.9 * k for k, name in enumerate(names)}
        self.bottom = self.y["patches"] - 0.45            # lower edge of the blocks
        self.top = self.y["cls"] + 0.45
        self.attributes = self.bottom - 0.75 if cfg.sp and (cfg.wspf or cfg.sspf) else None


def _vspcn_token_layout(ax, cfg: VSPCNConfig, y: float) -> None:
    """The input sequence as adjacent boxes: [CLS | visual prompt | semantic prompt | N patches]."""
    cells = [("CLS", 0.7, FROZEN)] + [(r"$\hat P_v$", 0.7, TRAINED)] * cfg.vp \
        + [(r"$\hat P_s$", 0.7, TRAINED)] * cfg.sp + [(r"$F^0$: N image patch tokens", 2.6, TOKEN)]
    ax.text(0.15, y + 0.55, "token layout of the input sequence $X^0$ (+ position embeddings)",
            fontsize=8, va="center")
    x = 0.15
    for text, width, colour in cells:
        _box(ax, x + width / 2, y, width - 0.04, 0.5, text, colour)
        x += width


def _vspcn_inputs(ax, cfg: VSPCNConfig, lanes: _VSPCNLanes) -> None:
    """What writes each lane before block 1: the CLS token, weak fusion (or a plain prompt), F^0, S^0."""
    x = 1.1
    _box(ax, x, lanes.y["cls"], 1.7, 0.5, "CLS token", FROZEN)
    _box(ax, x, lanes.y["patches"], 1.7, 0.5, "patch embedding $F^0$", FROZEN)
    if cfg.vp:
        prompt = "$P_v$" if cfg.train_visual_prompt else "$P_v$ (never trained)"
        text = f"WVPF (Eqs. 1-2)\n{prompt} reads $F^0$" if cfg.wvpf else f"plain visual prompt\n{prompt}"
        _box(ax, x, lanes.y["vp"], 1.7, 0.62, text, TRAINED)
        if cfg.wvpf:
            _arrow(ax, (x + 0.95, lanes.y["patches"]), (x + 0.95, lanes.y["vp"]), style=":")
    if cfg.sp:
        text = "WSPF (Eqs. 3-4)\n$P_s$ reads $S^0$" if cfg.wspf else "plain semantic prompt $P_s$"
        _box(ax, x, lanes.y["sp"], 1.7, 0.62, text, TRAINED)
    if lanes.attributes is not None:
        _box(ax, x, lanes.attributes, 1.7, 0.55, "$S^0 = G\\,W_g$\nA attribute tokens", TRAINED)
        if cfg.wspf:
            _arrow(ax, (x - 0.95, lanes.attributes), (x - 0.95, lanes.y["sp"]), style=":")


def _vspcn_strong_step(ax, cfg: VSPCNConfig, lanes: _VSPCNLanes, x: float) -> None:
    """One strong step at x: SVPF on the visual lane, the adapter on the attribute lane, SSPF on
    the semantic lane; dotted arrows show what each reads (patch tokens F^l, attribute tokens S^l)."""
    side = STEP_WIDTH / 2 + 0.06                        # the read arrows run beside the boxes
    if cfg.svpf:
        _box(ax, x, lanes.y["vp"], STEP_WIDTH, 0.34, "SVPF", TRAINED, fontsize=7)
        _arrow(ax, (x - side, lanes.y["patches"]), (x - side, lanes.y["vp"]), style=":", width=0.7)
    if cfg.sspf:
        _box(ax, x, lanes.y["sp"], STEP_WIDTH, 0.34, "SSPF", TRAINED, fontsize=7)
        _arrow(ax, (x + side, lanes.attributes), (x + side, lanes.y["sp"]), style=":", width=0.7)
    if cfg.sspf and cfg.adapter:
        _box(ax, x, lanes.attributes, STEP_WIDTH, 0.34, "adapter", TRAINED, fontsize=7)
        _arrow(ax, (x - side, lanes.y["patches"]), (x - side, lanes.attributes), style=":", width=0.7)


def _vspcn_outputs(ax, cfg: VSPCNConfig, lanes: _VSPCNLanes, x: float) -> None:
    """The final-LN outputs and the losses that read them (Eqs. 11-18), and what nobody reads."""
    rows = [("cls", "$z_{cls}$: $s_c = z_{cls}^\\top\\varphi(a_c)$", "$L_{BASE}$ (Eqs. 11-14)")]
    if cfg.vp:
        rows.append(("vp", "$z_{vp}$: classifier $z_{vp}\\Phi$", "$L_{CED}$ (Eqs. 15-16)"))
    if cfg.sp:
        rows.append(("sp", "$z_{sp}$ vs. $\\varphi(a_y)$", "$L_{SKD}$ (Eq. 17)"))
    for lane, output, loss in rows:
        _box(ax, x + 1.25, lanes.y[lane], 2.2, 0.5, output, SCORE)
        _box(ax, x + 3.35, lanes.y[lane], 1.75, 0.5, loss, LOSS)
        _arrow(ax, (x + 2.35, lanes.y[lane]), (x + 2.47, lanes.y[lane]))
    ax.text(x + 0.15, lanes.y["patches"], "patch outputs: not read", fontsize=8, color="0.4", va="center")
    ax.text(x + 2.25, lanes.top + 0.3, "test: $\\sigma(s) + \\gamma$ on unseen (Eq. 19)",
            fontsize=8, ha="center", color="0.25")


def _frozen_block(ax, lanes: _VSPCNLanes, left: float, width: float, label: str, bold: bool,
                  hatched: bool = False) -> None:
    """A frozen block (or a group of them) spanning the sequence's lanes, numbered above."""
    ax.add_patch(plt.Rectangle((left, lanes.bottom), width, lanes.top - lanes.bottom, facecolor=FROZEN,
                               edgecolor="0.45", linewidth=0.8, zorder=2, hatch="//" if hatched else None))
    ax.text(left + width / 2, lanes.top + 0.1, label, ha="center", va="bottom", fontsize=9,
            fontweight="bold" if bold else "normal")


def vspcn_diagram(cfg: VSPCNConfig | None = None, ax=None, depth: int = VIT_B16_DEPTH):
    """VSPCN on a frozen ViT of `depth` blocks (ViT-B/16 by default), as `cfg` builds it (default:
    the `paper_default` preset). The K blocks before the first strong step are drawn as one group,
    every later block on its own with the strong step before it (all blocks form the group when
    there is no strong fusion). Returns the figure."""
    cfg = cfg if cfg is not None else vspcn_preset("paper_default")
    strong = vspcn_strong_blocks(cfg, depth)
    total = cfg.num_blocks(depth)
    shallow = strong[0] - 1 if strong else total          # blocks drawn as one group: none precedes a strong step
    lanes = _VSPCNLanes(cfg)
    lowest = lanes.attributes if lanes.attributes is not None else lanes.bottom
    pitch, group_left, group_width = 1.1, 2.3, 1.0      # one deep block a unit; the shallow group's box
    first = group_left + group_width + (0.25 if shallow else -group_width)    # left end of the deep part
    end = first + pitch * (total - shallow)
    ax = _canvas(ax, (13, 5.8), (0, end + 4.4), (lowest - 0.85, 6.9))

    _vspcn_token_layout(ax, cfg, y=6.2)
    _vspcn_inputs(ax, cfg, lanes)
    for y in lanes.y.values():
        ax.plot([2.0, end + 0.1], [y, y], color="0.55", linewidth=1.0, zorder=1)
    if strong and cfg.sspf:
        ax.plot([2.0, end - pitch / 2], [lanes.attributes] * 2, color="0.55", linewidth=1.0, linestyle="--", zorder=1)
    if shallow:
        _frozen_block(ax, lanes, group_left, group_width, f"{_span_text(list(range(1, shallow + 1)))}", bold=False)
        ax.text(group_left + group_width / 2, (lanes.bottom + lanes.top) / 2, "unchanged:\nno fusion", rotation=90,
                ha="center", va="center", fontsize=8, color="0.3", zorder=4)
    for number in range(shallow + 1, total + 1):
        left = first + pitch * (number - shallow) - BLOCK_WIDTH
        _frozen_block(ax, lanes, left, BLOCK_WIDTH, str(number), bold=number in strong,
                      hatched=cfg.extra_random_block and number == total)
        if number in strong:
            _vspcn_strong_step(ax, cfg, lanes, left - (pitch - BLOCK_WIDTH) / 2)
    _vspcn_outputs(ax, cfg, lanes, end)

    notes = [f"grey: frozen ViT blocks 1-{total}" + (f" (block {total}, hatched, random)" if cfg.extra_random_block else ""),
             f"strong fusion before blocks {_span_text(strong)}"]
    ax.text(0.15, lowest - 0.6, ";  ".join(notes), fontsize=9, va="center")
    ax.legend(handles=[Patch(facecolor=colour, edgecolor="0.45", label=label) for colour, label in
                       ((FROZEN, "frozen"), (TRAINED, "trained"), (SCORE, "output / score"), (LOSS, "loss"))],
              loc="lower right", fontsize=8, ncol=4, frameon=False, bbox_to_anchor=(1.0, -0.01))
    ax.set_title(f"VSPCN on a frozen {depth}-block ViT (dotted arrows: what a fusion module reads)", fontsize=10)
    return ax.figure


# ---- Mg-MRN ------------------------------------------------------------------------------
def mgmrn_levels(cfg: MgMRNConfig) -> list[str]:
    """The backbone stages the model decodes, finest first (the last L; one without MgM)."""
    return list(RESNET_STAGES[-cfg.num_stages:])


def _mgmrn_labels(cfg: MgMRNConfig, level: int, levels: int) -> list[tuple[str, str]]:
    """(text, colour) of the boxes below stage `level` (1-based, finest first), top to bottom."""
    rfmb = {"paper_mean": f"RFMB (Eqs. 1-2)\n$M = {cfg.num_parts}$ parts", "none": "no RFMB ($\\hat g = f$)",
            "part_tokens": f"RFM, part tokens (ours)\n$M = {cfg.num_parts}$", "part_channels":
            f"RFM, part maps (ours)\n$M = {cfg.num_parts}$"}[cfg.rfm_mode]
    if level < levels and cfg.mrm == "scab":
        refine = "SCAB (Eqs. 3-7)\n$u_l = [\\delta(g_l); \\delta(\\hat u_l)]$"
    elif level < levels and cfg.mrm == "concat_only":
        refine = "concat, no SCAB\n$[\\delta(g_l); \\delta(s_l)]$"
    else:
        refine = "tokens $u_l = \\delta(g_l)$"
    rows = [(rfmb, TRAINED), ("$D_l$: to the common\ngrid and width $C$", TRAINED)] if cfg.mgm else []
    rows += [(refine, TRAINED if "SCAB" in refine or "concat" in refine else TOKEN),
             (f"VSD$_{level}$ (Eqs. 8-10)\nqueries: word vectors $E$", TRAINED),
             (f"$z_{level}$: $A$ attributes\n$L_{{SCE}} + \\lambda_{{AR}}L_{{AR}}$", LOSS),
             (f"$\\kappa\\cos(z_{level}, a_c)$", SCORE)]
    return rows


def mgmrn_diagram(cfg: MgMRNConfig | None = None, ax=None):
    """Mg-MRN as `cfg` builds it (default: the `paper` preset): the ResNet stages, one column per
    decoded stage, and the sum of the stages' scores (Eq. 14). Returns the figure."""
    cfg = cfg if cfg is not None else mgmrn_preset("paper")
    used = mgmrn_levels(cfg)
    pitch, width = 2.45, 2.15
    x_of = {name: 1.3 + pitch * k for k, name in enumerate(RESNET_STAGES)}
    ax = _canvas(ax, (12.5, 8.6), (0, x_of["layer4"] + 1.3), (-0.2, 10.0))

    ax.text(0.2, 9.65, "ResNet backbone (fine-tuned); stage $l = 1$ is the finest one decoded",
            fontsize=9, va="center")
    for k, name in enumerate(RESNET_STAGES):
        text = f"{name}: stage {used.index(name) + 1}" if name in used else f"{name}: not decoded"
        _box(ax, x_of[name], 9.0, width - 0.35, 0.5, text, TOKEN if name in used else UNUSED)
        if k:
            _arrow(ax, (x_of[RESNET_STAGES[k - 1]] + (width - 0.35) / 2, 9.0), (x_of[name] - (width - 0.35) / 2, 9.0))

    for level, name in enumerate(used, start=1):
        rows = _mgmrn_labels(cfg, level, len(used))
        rows_y = [8.0 - 1.2 * k for k in range(6 - len(rows), 6)]
        _arrow(ax, (x_of[name], 8.75), (x_of[name], rows_y[0] + 0.33))
        for (text, colour), y in zip(rows, rows_y):
            _box(ax, x_of[name], y, width, 0.66, text, colour, fontsize=7.5)
        for above, below in zip(rows_y, rows_y[1:]):
            _arrow(ax, (x_of[name], above - 0.33), (x_of[name], below + 0.33))
        _arrow(ax, (x_of[name], rows_y[-1] - 0.33), (x_of[name], 1.11))
        if cfg.mgm and cfg.mrm != "off":
            refine_y = rows_y[2]
            for coarser in used[level:]:                  # g_{l+1}, ..., g_L feed stage l's SCAB
                _arrow(ax, (x_of[coarser] - width / 2, rows_y[1] - 0.2), (x_of[name] + width / 2, refine_y),
                       colour="tab:blue", style="--", curve=0.15, width=0.7)

    right = x_of[used[-1]] + width / 2
    left = min(x_of[used[0]] - width / 2, right - 2 * pitch - width)      # room for the formula
    _box(ax, (left + right) / 2, 0.8, right - left, 0.62,
         "$S(x, c) = \\sum_l \\kappa\\cos(z_l, a_c)$ (Eq. 14), then calibrated stacking ($\\gamma$)", SCORE)
    ax.text(0.2, 0.05, f"L = {len(used)} stage(s); training: $\\sum_l (L_{{SCE}} + \\lambda_{{AR}} L_{{AR}})$ "
            f"(Eq. 13), $\\lambda_{{AR}} = {cfg.lambda_ar:g}$, $\\kappa = {cfg.kappa:g}$"
            + ("; dashed: coarser grids into the SCAB" if cfg.mgm and cfg.mrm != "off" else ""),
            fontsize=8, va="center")
    ax.legend(handles=[Patch(facecolor=colour, edgecolor="0.45", label=label) for colour, label in
                       ((TOKEN, "feature map / tokens"), (TRAINED, "trained module"), (LOSS, "losses"),
                        (SCORE, "class scores"))],
              loc="upper right", fontsize=8, ncol=4, frameon=False, bbox_to_anchor=(1.0, 1.0))
    return ax.figure
