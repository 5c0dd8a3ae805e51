"""The environment of every pytest run, the unit tests' and the chapters' (nbval's kernels inherit it)."""
import os

# Fix CPU threads so test timings and saved notebook outputs are stable.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Offline: a timm `pretrained=True` fails in seconds instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Missing toy-backbone weights are an error here, not an hour of pretraining inside the suite.
os.environ["ZSL_ALLOW_PRETRAIN"] = "0"
