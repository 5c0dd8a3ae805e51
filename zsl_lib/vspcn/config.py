"""VSPCN configuration: one dataclass, two presets, and the switches of Table 2.

Presets:

* `paper_default`: the book's recommended reading of the paper. 12 pretrained blocks, strong fusion before
  the last M - K of them, a per-instance semantic adapter, a trainable visual prompt,
  and the released code's choices wherever the paper is silent or was tuned with them
  (alpha on the attention term, rho_v, the doubled semantic residual, zero-initialised
  SVPF projections, the code's loss forms and weights).
* `code_exact`: the released code where it is well defined: a 13th, randomly
  initialised frozen block with strong fusion before 0-based blocks 7..12, the batch-mean
  adapter state, and a visual prompt that is never trained (it is not registered there).

Ablation switches (Table 2): `vp`, `sp` (prompt tokens present), `wvpf`, `wspf` (weak
fusion at the input, Eqs. 1-4; off = a plain learnable token), `svpf`, `sspf` (strong
fusion in the deep layers, Eqs. 5-8), `adapter` (Eqs. 9-10; off = SSPF reads S^0).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# Dataset-specific fusion constants of the released code (alpha_v, alpha_s, rho_v).
DATASET_FUSION = {
    "CUB": (0.05, 0.8, 0.9),
    "SUN": (0.0, 0.5, 0.9),
    "AWA2": (0.95, 0.8, 0.1),
}


@dataclass(frozen=True)
class LossWeights:
    """Weights and forms of Eqs. (11)-(18), as the released code sets them."""
    lambda_sr: float = 0.01     # Eq. (11): 0.5 x 0.02 in the code
    mu_ed: float = 0.05         # Eq. (15)
    mu_ce: float = 0.5          # Eq. (15)
    lambda_ced: float = 0.8     # Eq. (18), lambda_1
    lambda_skd: float = 0.18    # Eq. (18), lambda_2: 0.9 x 0.2 in the code
    sr_form: str = "l2"         # "l2" (code: unsquared norm) or "mse" (paper: squared)
    skd_divergence: str = "symmetric_kl"   # "symmetric_kl" (code) or "jsd" (mixture JSD)
    ed_eps: float = 1e-6        # keeps Eq. (16) finite when the KL term vanishes


@dataclass(frozen=True)
class VSPCNConfig:
    # Table 2 switches
    vp: bool = True
    sp: bool = True
    wvpf: bool = True
    wspf: bool = True
    svpf: bool = True
    sspf: bool = True
    adapter: bool = True
    # structure
    num_shallow: int | None = None      # K; None = half the backbone's depth (6 for ViT-B)
    extra_random_block: bool = False    # code_exact: a 13th random frozen block
    # fusion constants (Eqs. 5-10)
    alpha_v: float = 0.05
    alpha_s: float = 0.8
    rho_v: float = 0.9
    beta: float = 0.5
    sp_residual: str = "double"         # "double" (code: 2 f + A V) or "single" (paper: f + A V)
    svpf_init: str = "zeros"            # "zeros" (code: attention stays uniform) or "trunc_normal"
    adapter_batch_mean: bool = False    # code: carry the batch mean of S^l to the next step
    train_visual_prompt: bool = True    # code bug: P_v is never registered, so never trained
    losses: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        choices = {"sp_residual": ("double", "single"), "svpf_init": ("zeros", "trunc_normal")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"VSPCNConfig.{key}={getattr(self, key)!r}; allowed: {allowed}")
        if self.losses.sr_form not in ("l2", "mse"):
            raise ValueError(f"LossWeights.sr_form={self.losses.sr_form!r}; allowed: ('l2', 'mse')")
        if self.losses.skd_divergence not in ("symmetric_kl", "jsd"):
            raise ValueError(f"LossWeights.skd_divergence={self.losses.skd_divergence!r}; "
                             "allowed: ('symmetric_kl', 'jsd')")
        if (self.wvpf or self.svpf) and not self.vp:
            raise ValueError("wvpf / svpf need the visual prompt: set vp=True or turn them off")
        if (self.wspf or self.sspf or self.adapter) and not self.sp:
            raise ValueError("wspf / sspf / adapter need the semantic prompt: set sp=True or turn them off")
        if self.adapter and not self.sspf:
            raise ValueError("adapter=True needs sspf=True: the adapter (Eqs. 9-10) updates the attribute tokens "
                             "that only strong semantic fusion (Eqs. 7-8) reads; set sspf=True or adapter=False")

    def num_blocks(self, depth: int) -> int:
        """Frozen blocks the model runs on a backbone of `depth` blocks (code_exact adds a random one)."""
        return depth + int(self.extra_random_block)

    def shallow_blocks(self, depth: int) -> int:
        """K, the blocks that run before the first strong step on a backbone of `depth` blocks."""
        return self.num_shallow if self.num_shallow is not None else depth // 2 + int(self.extra_random_block)

    def for_dataset(self, name: str) -> "VSPCNConfig":
        """The released code's per-dataset alpha_v, alpha_s, rho_v (CUB, SUN, AWA2)."""
        if name not in DATASET_FUSION:
            raise ValueError(f"no fusion constants for {name!r}; known: {sorted(DATASET_FUSION)}")
        alpha_v, alpha_s, rho_v = DATASET_FUSION[name]
        return replace(self, alpha_v=alpha_v, alpha_s=alpha_s, rho_v=rho_v)


PRESETS = {
    "paper_default": VSPCNConfig(),
    "code_exact": VSPCNConfig(extra_random_block=True, adapter_batch_mean=True, train_visual_prompt=False),
}

# Table 2 rows as switch settings (rows 5 and 6 are inferred from the order of the table's columns).
_OFF = dict(vp=False, sp=False, wvpf=False, wspf=False, svpf=False, sspf=False, adapter=False)
TABLE2_ROWS = {
    1: ("baseline", {}),
    2: ("+ visual prompt", dict(vp=True, wvpf=True, svpf=True)),
    3: ("+ semantic prompt", dict(sp=True, wspf=True, sspf=True, adapter=True)),
    4: ("both prompts, no fusion", dict(vp=True, sp=True)),
    5: ("both prompts, weak fusion only", dict(vp=True, sp=True, wvpf=True, wspf=True)),
    6: ("both prompts, strong fusion only", dict(vp=True, sp=True, svpf=True, sspf=True, adapter=True)),
    7: ("full, without adapter", dict(vp=True, sp=True, wvpf=True, wspf=True, svpf=True, sspf=True)),
    8: ("full VSPCN", dict(vp=True, sp=True, wvpf=True, wspf=True, svpf=True, sspf=True, adapter=True)),
}


def preset(name: str, dataset: str | None = None, **overrides) -> VSPCNConfig:
    """A named preset with a benchmark's fusion constants (`dataset`: CUB, SUN, AWA2) and
    overrides, e.g. preset("paper_default", "CUB", adapter=False)."""
    if name not in PRESETS:
        raise ValueError(f"unknown VSPCN preset {name!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[name] if dataset is None else PRESETS[name].for_dataset(dataset)
    return replace(base, **overrides)


def table2_switches(row: int) -> dict[str, bool]:
    """All seven Table 2 switches of one row (those the row does not turn on are off)."""
    if row not in TABLE2_ROWS:
        raise ValueError(f"Table 2 has rows 1-8, got {row}")
    return {**_OFF, **TABLE2_ROWS[row][1]}


def table2_row(row: int, base: str = "paper_default") -> VSPCNConfig:
    """The configuration of one row of Table 2 on top of a preset."""
    return preset(base, **table2_switches(row))
