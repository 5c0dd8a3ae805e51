"""zsl_lib: the library behind zsl-book (generalized zero-shot learning, rebuilt).

Modules: `toyworld` (ToyBirds, and ToyNet for pretraining), `backbones` (toy-pretrained timm models),
`semantics` (GloVe attribute vectors), `metrics` (T1, U / S / H, calibration, AUSUC),
`eszsl` and `probe` (the linear baseline), `xlsa17` (the Proposed Split files),
`provenance` (what every stored result records), `runtime` (device, seeds, cache).
"""
__version__ = "0.1.0"

from . import backbones as _backbones  # noqa: E402,F401  registers the toy backbones with timm
