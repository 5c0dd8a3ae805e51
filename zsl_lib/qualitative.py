"""What the models see (chapter 10): the probe, VSPCN and Mg-MRN on one ToyBirds world, their
per-attribute attention, their embeddings and their test scores, and the controls' models.

Two commands store what the chapter loads in `smoke` mode:

    python -m zsl_lib.qualitative shuffled --family mgmrn --out results/qualitative/mgmrn_shuffled.json
    python -m zsl_lib.qualitative views --out results/qualitative/views_world0.json

(`--family vspcn` trains VSPCN's control the same way; the chapter does without it, because
VSPCN's trained adapter attention is uniform and a control only discounts a positive finding.)

`shuffled` trains the shuffled-attribute control: the stored book run's preset, recipe and seed
on the same world, with the columns of the class attribute vectors permuted so that attribute a
is supervised with the labels of attribute order[a], which describes another part
(`localisation.shuffled_parts`); its trained parameters go beside the JSON (`.pt`). `views`
computes, from the stored VSPCN and Mg-MRN runs and a probe fitted now, the test split's
scores (headline calibration: z-scored rows), embeddings of test images before and after
training, and the probe's read-out (`.npz` beside the JSON).

Per-attribute attention, (B, A, N) over a square grid of N cells:
- VSPCN: the semantic adapter's attention of each attribute token over the patches, last
  strong step (8 x 8 patches);
- Mg-MRN: each stage's decoder attention of each attribute over that stage's grid (4 x 4),
  its two tokens at a position added (`mgmrn_attention`);
- the probe has no attention; its relevance map is the contribution of each patch to the
  attribute's score through the mean-of-patches half of its features, positive part
  normalised (`localisation.as_distribution`).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import evaluate, experiment, families, localisation, metrics, probe, provenance
from .backbones import batch_to_input, load_or_pretrain, sha256_file
from .eszsl import ESZSL
from .mgmrn.recorder import AttentionRecorder as MgMRNRecorder
from .runtime import atomic_open
from .toyworld.dataset import ToyBirds, ToyBirdsConfig, load_toybirds
from .train import TrainConfig
from .vspcn.recorder import AttentionRecorder as VSPCNRecorder

FAMILIES = ("vspcn", "mgmrn")          # the model families the chapter inspects (zsl_lib.families)
MODELS = {"probe": "ESZSL probe (toy ViT)", "vspcn": "VSPCN", "mgmrn": "Mg-MRN"}
CALIBRATION = "subtract_seen"       # on z-scored rows: the headline calibration of every model
EMBED_IMAGES_PER_CLASS = 12         # test images a class in the embedding views


class ShuffledAttributes:
    """A world whose class attribute vectors have their columns in `order`: a model built on it
    trains attribute a (its word vector, its token) on the labels of attribute order[a]. Every
    other attribute of the world is the world's own."""

    def __init__(self, world: ToyBirds, order: np.ndarray):
        if sorted(order) != list(range(len(world.attribute_names))):
            raise ValueError(f"order must be a permutation of the {len(world.attribute_names)} attributes")
        self.world, self.order = world, np.asarray(order)

    @property
    def class_attributes(self) -> np.ndarray:
        return self.world.class_attributes[:, self.order]

    def __getattr__(self, name):
        return getattr(self.world, name)


def stored_run(family: str, repo: Path = provenance.REPO_ROOT) -> dict:
    """The stored book-size run of a family (world 0), whose model the chapter inspects."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    return provenance.load_json(repo / "results" / f"{family}_book.json")


def stored_world(family: str = "vspcn", repo: Path = provenance.REPO_ROOT) -> ToyBirds:
    """The world of the family's stored book-size run (world 0, book size for both families)."""
    return load_toybirds(ToyBirdsConfig(**stored_run(family, repo)["config"]["world"]))


def load_trained(family: str, repo: Path = provenance.REPO_ROOT):
    """(trained model, world) of the family's stored book-size run."""
    return families.get(family).load_trained(stored_run(family, repo), repo / "results" / f"{family}_book.pt")


def untrained(family: str, world: ToyBirds, repo: Path = provenance.REPO_ROOT) -> torch.nn.Module:
    """The stored run's model as it started: same preset and seed, new parts untrained."""
    config = stored_run(family, repo)["config"]
    spec = families.get(family)
    return spec.build(world, spec.preset(config["preset"]), world.seen_classes,
                        config["train"]["seed"]).eval()


def train_shuffled(family: str, out: Path, repo: Path = provenance.REPO_ROOT, log=print) -> dict:
    """Train and store the shuffled-attribute control of `family` (see the module docstring)."""
    sha, start = provenance.git_sha(), time.time()
    config = stored_run(family, repo)["config"]
    world = load_toybirds(ToyBirdsConfig(**config["world"]))
    seed = config["train"]["seed"]
    order = localisation.shuffled_parts(localisation.attribute_parts(), seed)
    view = ShuffledAttributes(world, order)
    spec = families.get(family)
    cfg = spec.preset(config["preset"])
    train_cfg = TrainConfig(**{**config["train"], "milestones": tuple(config["train"]["milestones"])})
    model, history, scores = experiment.quick_run(view, lambda seen: spec.build(view, cfg, seen, seed), train_cfg,
                                                  log=log)
    state_sha = experiment.save_state(model, out.with_suffix(".pt"))
    metrics_ = {**scores, "loss_first": float(np.mean([h["total"] for h in history[:10]])),
                "loss_last": float(np.mean([h["total"] for h in history[-10:]]))}
    record = provenance.run_record(f"{family}_shuffled_attributes", {
        "family": family, "preset": config["preset"], "train": asdict(train_cfg), "world": config["world"],
        "attribute_order": order.tolist(), "same_as": f"results/{family}_book.json except the attribute order"},
        [seed], metrics_, time.time() - start, sha)
    record["state_sha256"] = state_sha
    provenance.save_json(out, record)
    return record


def load_shuffled(record: dict, state_path: Path):
    """(trained shuffled-attribute model, its world, attribute order) of a stored `shuffled` run."""
    config = record["config"]
    world = load_toybirds(ToyBirdsConfig(**config["world"]))
    view = ShuffledAttributes(world, np.array(config["attribute_order"]))
    spec = families.get(config["family"])
    model = spec.build(view, spec.preset(config["preset"]), world.seen_classes, config["train"]["seed"])
    return experiment.load_state(model, record, state_path), world, view.order


# ---- attention -------------------------------------------------------------------------------

def in_batches(attend, images: np.ndarray, batch_size: int = 128):
    """`attend(images)` over batches of `images`, concatenated along the image axis (a list of maps per
    stage stays a list); the recorders keep every block's attention, too much for thousands of images."""
    parts = [attend(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    if isinstance(parts[0], list):
        return [np.concatenate(stage) for stage in zip(*parts)]
    return np.concatenate(parts)


@torch.no_grad()
def vspcn_attention(model, images: np.ndarray) -> np.ndarray:
    """The semantic adapter's attention of every attribute over the patches, last strong step: (B, A, N)."""
    with VSPCNRecorder(model) as recorder:
        model(batch_to_input(images))
    return recorder.fusion["adapter"][-1].double().numpy()


@torch.no_grad()
def mgmrn_attention(model, images: np.ndarray) -> list[np.ndarray]:
    """Each stage's decoder attention of every attribute over its grid, finest stage first: L x (B, A, N).

    A stage below the last attends to two tokens at each grid position, g_l's and the SCAB output's
    (`AttentionRecorder`); both sit at the same place in the image, so a position's attention is
    their sum. Region tokens (rfm_mode="part_tokens") have no place and are left out; each map is
    renormalised over the positions."""
    with MgMRNRecorder(model) as recorder:
        model(batch_to_input(images))
    maps = []
    for l in range(model.num_stages):
        attention = recorder.decoders[l].double()                                        # (B, A, N_l)
        positions = recorder.attribute_maps(l)[0, 0].numel()
        spatial = attention[..., :positions]                                              # g_l's tokens
        if l < model.num_stages - 1 and model.scab is not None:
            spatial = spatial + attention[..., positions:2 * positions]                   # + u_hat's tokens
        maps.append((spatial / spatial.sum(-1, keepdim=True)).numpy())
    return maps


@torch.no_grad()
def vit_tokens(vit: torch.nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The frozen toy ViT's last normalised tokens, (B, prefix + N, D)."""
    return np.concatenate([vit.forward_features(batch_to_input(images[i:i + batch_size])).numpy()
                           for i in range(0, len(images), batch_size)])


def probe_features(tokens: np.ndarray, prefix: int = 1) -> np.ndarray:
    """[CLS ; mean of patch tokens], (B, 2D): the features the probe reads (`features.backbone_features`)."""
    return np.concatenate([tokens[:, 0], tokens[:, prefix:].mean(1)], axis=1)


def probe_contributions(tokens: np.ndarray, readout: dict, prefix: int = 1) -> np.ndarray:
    """Each patch's contribution to each attribute's score through the mean-of-patches half of the
    probe's z-scored features, (B, A, N): their mean over the patches is exactly that half's share
    of the attribute scores."""
    D = tokens.shape[-1]
    patches = (tokens[:, prefix:] - readout["mu"][D:]) / readout["sd"][D:]            # (B, N, D)
    return np.einsum("bnd,da->ban", patches, readout["V"][D:])


def probe_relevance(tokens: np.ndarray, readout: dict, prefix: int = 1) -> np.ndarray:
    """The probe's per-attribute map: `probe_contributions`, positive part, as a distribution, (B, A, N)."""
    return localisation.as_distribution(probe_contributions(tokens, readout, prefix))


def fit_probe(features: np.ndarray, world: ToyBirds, order: np.ndarray | None = None) -> dict:
    """The chapter-1 ESZSL probe on `features` of every image of `world`: (alpha, beta) and gamma chosen on
    the validation protocol (`probe.eszsl_probe`), then refitted on trainval to keep its read-out:
    {"V" (2D, A), "mu", "sd" (2D,), "gamma", "scores" (test, z-scored rows), "alpha", "beta"}.
    With `order`, the read-out of the shuffled-attribute control (same alpha, beta; signatures in `order`)."""
    result = probe.eszsl_probe(features, world)
    trainval = features[world.splits["trainval"]]
    mu, sd = trainval.mean(0), trainval.std(0) + 1e-6
    columns, _ = metrics.columns(world.seen_classes, world.labels[world.splits["trainval"]], world.seen_classes)
    signatures = world.class_attributes[world.seen_classes]
    readout = ESZSL(result["alpha"], result["beta"]).fit((trainval - mu) / sd, columns, signatures.T)
    out = {"V": readout.V, "mu": mu, "sd": sd, "gamma": result["gamma"], "scores": result["_scores"],
           "alpha": result["alpha"], "beta": result["beta"]}
    if order is not None:
        out["V_shuffled"] = ESZSL(result["alpha"], result["beta"]).fit(
            (trainval - mu) / sd, columns, signatures[:, order].T).V
    return out


# ---- embeddings and scores --------------------------------------------------------------------

def embedding_images(world: ToyBirds, per_class: int = EMBED_IMAGES_PER_CLASS) -> np.ndarray:
    """Indices of the first `per_class` test images of every class, seen (test_seen) and unseen."""
    test = np.r_[world.splits["test_seen"], world.splits["test_unseen"]]
    return np.concatenate([test[world.labels[test] == c][:per_class] for c in range(len(world.class_names))])


@torch.no_grad()
def embed(family: str, model, images: np.ndarray) -> np.ndarray:
    """What a model compares with the class attribute vectors: VSPCN's CLS feature (B, D); Mg-MRN's
    per-stage attribute predictions, each L2-normalised, side by side (B, L * A)."""
    x = batch_to_input(images)
    if family == "vspcn":
        return model.forward_head(model.forward_features(x), pre_logits=True).double().numpy()
    return torch.cat([F.normalize(z, dim=-1) for z in model.stage_attributes(x)], dim=1).double().numpy()


def knn_accuracy(embedding: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy (cosine, majority vote, ties to the nearest): how well
    the embedding groups images of a class, measured in its own space and not in a 2-D picture."""
    if len(embedding) <= k:
        raise ValueError(f"{len(embedding)} points leave no {k} neighbours; use fewer neighbours or more points")
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]                                  # (n, k), nearest first
    rank_bonus = 1e-3 * np.arange(k, 0, -1)                                             # ties go to the nearer
    predicted = [np.bincount(row, weights=1 + rank_bonus).argmax() for row in labels[neighbours]]
    return float(np.mean(np.asarray(predicted) == labels))


def compute_views(world: ToyBirds, log=print) -> dict[str, np.ndarray | float]:
    """Everything the chapter draws that needs a pass over many images: for each model, the test
    split's scores (z-scored rows, columns in `world.protocol("test")` order), its validation gamma,
    and embeddings of `embedding_images` before and after training; the probe's read-out."""
    test_idx, candidates, seen = world.protocol("test")
    labels, seen_cols = metrics.columns(candidates, world.labels[test_idx], seen)
    chosen = embedding_images(world)
    order = localisation.shuffled_parts(localisation.attribute_parts(), stored_run("vspcn")["config"]["train"]["seed"])
    views: dict = {"embed_index": chosen, "test_labels": labels, "seen_cols": seen_cols}
    start = time.time()
    vit = load_or_pretrain("toy_vit_hybrid_64")
    features = probe_features(vit_tokens(vit, world.images))
    fitted = fit_probe(features, world, order)
    views |= {"probe_scores": fitted["scores"], "probe_gamma": fitted["gamma"], "probe_V": fitted["V"],
              "probe_mu": fitted["mu"], "probe_sd": fitted["sd"], "probe_V_shuffled": fitted["V_shuffled"],
              "probe_before": (features[chosen] - fitted["mu"]) / fitted["sd"]}
    views["probe_after"] = views["probe_before"] @ fitted["V"]
    log(f"probe: {time.time() - start:.0f} s")
    for family in FAMILIES:
        model, _ = load_trained(family)
        scored = evaluate.split_scores(model, world, "test")
        views[f"{family}_scores"] = metrics.standardize_rows(scored[0])
        views[f"{family}_gamma"] = stored_run(family)["metrics"]["gamma"]
        views[f"{family}_after"] = embed(family, model, world.images[chosen])
        views[f"{family}_before"] = embed(family, untrained(family, world), world.images[chosen])
        log(f"{family}: {time.time() - start:.0f} s")
    return views


def save_views(views: dict, out: Path, sha: str | None, wall_time_s: float, world: ToyBirds) -> None:
    """The views as `.npz` (arrays) beside a JSON record with provenance and the npz's sha256."""
    arrays = {k: np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f" else None)
              for k, v in views.items()}
    with atomic_open(out.with_suffix(".npz"), "wb") as f:
        np.savez_compressed(f, **arrays)
    config = {"world": asdict(world.config), "models": {f: f"results/{f}_book.json" for f in FAMILIES} |
              {"probe": "ESZSL on toy_vit_hybrid_64 features, chapter 1's protocol"},
              "calibration": f"{CALIBRATION} on z-scored rows", "embed_images_per_class": EMBED_IMAGES_PER_CLASS}
    record = provenance.run_record("qualitative_views", config, [world.config.seed],
                                   {f"{m}_gamma": float(views[f"{m}_gamma"]) for m in MODELS}, wall_time_s, sha)
    record["npz_sha256"] = sha256_file(out.with_suffix(".npz"))
    provenance.save_json(out, record)


def load_views(path: Path) -> dict[str, np.ndarray]:
    """Stored views (`save_views`), checked against the sha256 in their record."""
    record = provenance.load_json(path)
    if sha256_file(path.with_suffix(".npz")) != record["npz_sha256"]:
        raise RuntimeError(f"{path.with_suffix('.npz')} does not match its record; rerun "
                           "`python -m zsl_lib.qualitative views --out " + str(path) + "`")
    with np.load(path.with_suffix(".npz")) as data:
        return {k: data[k] for k in data.files}


# ---- reading scores at one gamma ---------------------------------------------------------------

def operating_point(scores: np.ndarray, labels: np.ndarray, seen_cols: np.ndarray, gamma: float) -> dict:
    """U, S, H (%) at `gamma` and the confusion strip: of the unseen-class images, the shares (%) named
    correctly, as another unseen class, as a seen class; of the seen-class images, correctly, as
    another seen class, as an unseen class."""
    result = metrics.gzsl(scores, labels, seen_cols, gamma, CALIBRATION)
    predicted = metrics.predict(scores, seen_cols, gamma, CALIBRATION)
    strip = {}
    for group, is_group in (("unseen", ~seen_cols[labels]), ("seen", seen_cols[labels])):
        right = predicted[is_group] == labels[is_group]
        same_group = seen_cols[predicted[is_group]] == seen_cols[labels[is_group]]
        strip[group] = 100 * np.array([right.mean(), (same_group & ~right).mean(), (~same_group).mean()])
    return {"U": 100 * result.U, "S": 100 * result.S, "H": 100 * result.H, "strip": strip}


def confused_pairs(scores: np.ndarray, labels: np.ndarray, seen_cols: np.ndarray, gamma: float,
                   top: int = 3) -> list[tuple[int, int, float]]:
    """The `top` (true column, predicted column, share of the true class's images) confusions of unseen
    classes with any other class at `gamma`, largest share first."""
    predicted = metrics.predict(scores, seen_cols, gamma, CALIBRATION)
    pairs = []
    for c in np.flatnonzero(~seen_cols):
        mine = labels == c
        wrong, counts = np.unique(predicted[mine][predicted[mine] != c], return_counts=True)
        pairs += [(int(c), int(w), float(n / mine.sum())) for w, n in zip(wrong, counts)]
    return sorted(pairs, key=lambda p: -p[2])[:top]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.qualitative", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    shuffled = sub.add_parser("shuffled", help="train the shuffled-attribute control of a family")
    shuffled.add_argument("--family", choices=sorted(FAMILIES), required=True)
    shuffled.add_argument("--out", type=Path, required=True)
    views = sub.add_parser("views", help="scores, embeddings and the probe's read-out on world 0")
    views.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.out.suffix != ".json" or args.out.is_dir():
        example = f"{args.family}_shuffled.json" if args.command == "shuffled" else "views_world0.json"
        parser.error(f"--out {args.out}: give the path of a .json file to write (its weights go beside it, as .pt), "
                     f"e.g. results/qualitative/{example}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.command == "shuffled":
        record = train_shuffled(args.family, args.out)
        print(f"wrote {args.out}: T1 {record['metrics']['T1']:.1f} %, AUSUC {record['metrics']['AUSUC']:.1f} "
              f"in {record['wall_time_s']:.0f} s")
    else:
        sha, start = provenance.git_sha(), time.time()
        world = stored_world()
        save_views(compute_views(world), args.out, sha, time.time() - start, world)
        print(f"wrote {args.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
