"""Floating-point operations of one training step and of scoring one image, for both models at
full size on CUB: VSPCN (paper_default, ViT-B/16 at 224 px) and Mg-MRN (paper, ResNet-101 at
448 px, L = 3, N_p = 7), counted by torch's FlopCounterMode (matrix products and convolutions,
the bulk of the work; element-wise operations are not counted).

A step is forward, backward and the optimiser update. It is counted at batch 1 and batch 2 on
the CPU (random weights: the count does not depend on them), which gives the cost per image
and the part that does not grow with the batch (the prototypes of every class, the attribute
tokens); chapter 6 builds its performance model on these numbers.

    python benchmarks/step_flops.py

Writes benchmarks/results/step_flops.json.
"""
import time

import timm
import torch

from common import save_result, step_flops
from zsl_lib import mgmrn, vspcn

CUB = {"attributes": 312, "word_dim": 300, "classes": 200, "seen": 150}


def vspcn_model() -> tuple[torch.nn.Module, int, torch.optim.Optimizer]:
    vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    model = vspcn.VSPCN(vit, torch.randn(CUB["attributes"], CUB["word_dim"]),
                        torch.rand(CUB["classes"], CUB["attributes"]), torch.arange(CUB["seen"]),
                        vspcn.preset("paper_default", "CUB"))
    return model, 224, torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)


def mgmrn_model() -> tuple[torch.nn.Module, int, torch.optim.Optimizer]:
    cnn = timm.create_model("resnet101", pretrained=False, num_classes=0)
    model = mgmrn.MgMRN(cnn, torch.randn(CUB["attributes"], CUB["word_dim"]),
                        torch.rand(CUB["classes"], CUB["attributes"]), torch.arange(CUB["seen"]),
                        mgmrn.preset("paper", "CUB"))
    return model, 448, torch.optim.SGD(model.parameters(), lr=5e-4, momentum=0.9)


def count(make) -> dict:
    """GFLOPs of a training step at batch 1 and 2, and of scoring one image."""
    torch.manual_seed(0)
    model, size, opt = make()
    model.train()
    train = {}
    for b in (1, 2):
        x, labels = torch.randn(b, 3, size, size), torch.arange(b)

        def step():
            model.training_losses(x, labels)["total"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        train[b] = step_flops(step)
    model.eval()
    with torch.no_grad():
        score = step_flops(lambda: model(torch.randn(1, 3, size, size)))
    return {"size": size, "train_gflop_per_image": round((train[2] - train[1]) / 1e9, 2),
            "train_gflop_fixed": round((2 * train[1] - train[2]) / 1e9, 2),
            "score_gflop_per_image": round(score / 1e9, 2)}


def main() -> None:
    torch.set_num_threads(2)
    start = time.time()
    metrics = {"vspcn": count(vspcn_model), "mgmrn": count(mgmrn_model)}
    for name, m in metrics.items():
        print(name, m)
    print("wrote", save_result("step_flops", {"dataset sizes": CUB, "vspcn": "paper_default, ViT-B/16",
                                              "mgmrn": "paper, ResNet-101, L = 3, N_p = 7"},
                               metrics, time.time() - start))


if __name__ == "__main__":
    main()
