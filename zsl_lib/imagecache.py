"""The fast data path: decode and resize every image once, into a memory-mapped uint8 array.

Reading a benchmark image from its JPEG costs a decode and a resize every epoch; a
224 px uint8 copy costs a memory read. `build_cache` writes the copies once (150 KB an
image at 224 px: 1.7 GB for CUB) and `open_cache` maps them, so a batch is a slice of
an array, exactly like ToyBirds' images in memory, and the training loop treats both the
same. `JpegImages` keeps the JPEG path, with the same indexing, for comparison.
Augmentation then runs on the normalised batch on the device (`AUGMENTATIONS`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .runtime import atomic_open


def load_image(path: str | Path, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3): shorter side resized to `size`, centre crop."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = size / min(im.size)
            w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
            im = im.resize((w, h), Image.BILINEAR)
            left, top = (w - size) // 2, (h - size) // 2
            return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist; check the dataset root and re-run the "
                                "data preparation") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"image {path} cannot be decoded ({err}); re-download or replace that file") from None


class JpegImages:
    """Image files read on demand, indexed like a uint8 array (N, size, size, 3)."""

    def __init__(self, paths: list[str | Path], size: int):
        self.paths, self.size = [Path(p) for p in paths], size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index) -> np.ndarray:
        if np.ndim(index) == 0:
            return load_image(self.paths[int(index)], self.size)
        return np.stack([load_image(self.paths[i], self.size) for i in np.asarray(index)])


class Rows:
    """The rows `index` of an image array, indexed like an array of their own but read only when
    asked: a split of a memory-mapped cache without loading the whole split into memory."""

    def __init__(self, images, index: np.ndarray):
        self.images, self.index = images, np.asarray(index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows) -> np.ndarray:
        return self.images[self.index[rows]]


def fingerprint(paths: list[str | Path], size: int) -> str:
    """What a cache was built from: the file list (names and sizes on disk) and the image size."""
    h = hashlib.sha256(str(size).encode())
    for p in paths:
        h.update(f"{p}\0{Path(p).stat().st_size}\n".encode())
    return h.hexdigest()


def build_cache(paths: list[str | Path], size: int, out: str | Path, log=print) -> np.ndarray:
    """Decode and resize `paths` once into `out` (a .npy file), unless an up-to-date cache is there.

    The array is written to a temporary file and renamed when complete, with a sidecar
    `out.json` recording its fingerprint; an interrupted build leaves no cache behind.
    Returns the memory-mapped array.
    """
    out = Path(out)
    meta = out.with_suffix(".json")
    stamp = fingerprint(paths, size)
    if out.is_file() and meta.is_file() and json.loads(meta.read_text()).get("fingerprint") == stamp:
        return open_cache(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
    for i, p in enumerate(paths):
        array[i] = load_image(p, size)
        if log and (i + 1) % 1000 == 0:
            log(f"cached {i + 1}/{len(paths)} images")
    array.flush()
    del array
    tmp.replace(out)
    with atomic_open(meta) as f:
        json.dump({"fingerprint": stamp, "count": len(paths), "size": size}, f)
    return open_cache(out)


def open_cache(path: str | Path) -> np.ndarray:
    """A cache written by `build_cache`, memory-mapped read-only: (N, size, size, 3) uint8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image cache at {path}; build it with zsl_lib.imagecache.build_cache")
    array = np.load(path, mmap_mode="r")
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{path} is not an image cache (dtype {array.dtype}, shape {array.shape}); rebuild it")
    return array


def random_resized_crop_flip(x: torch.Tensor, scale: tuple[float, float] = (0.64, 1.0),
                             flip: float = 0.5) -> torch.Tensor:
    """Random crops (area fraction in `scale`, square) resized back, and horizontal flips,
    for a batch (B, C, H, W) on its own device, in one `grid_sample`.

    The random numbers come from torch's CPU generator, so a checkpointed run resumes
    them exactly whatever the device.
    """
    b = x.shape[0]
    side = torch.empty(b).uniform_(*scale).sqrt()                        # crop side / image side
    centre = (torch.rand(b, 2) * 2 - 1) * (1 - side[:, None])            # keeps the crop inside
    mirror = torch.where(torch.rand(b) < flip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = side * mirror, side
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


CROP_SIDE = 448 / 512      # Mg-MRN's code: Resize 512 -> RandomCrop 448


def crop_flip(x: torch.Tensor) -> torch.Tensor:
    """Mg-MRN's training transform (Resize 512 -> RandomCrop 448 -> flip) for a batch (B, C, H, W)
    of images cached as 448 px centre squares: a square crop of 448/512 of the side at a random
    position, resized back to the full size, and horizontal flips with probability 0.5.

    Two differences from the code remain, because the cache holds one centre square: the crop
    stays inside that square (the code's can reach the ends of a landscape image), and its
    pixels are interpolated from the 448 px copy (392 px upsampled) instead of read at 512 px.
    """
    return random_resized_crop_flip(x, scale=(CROP_SIDE ** 2, CROP_SIDE ** 2))


# data.augment: the name of a training augmentation -> the function (None: no augmentation).
AUGMENTATIONS = {"none": None, "crop_flip": crop_flip, "resized_crop_flip": random_resized_crop_flip}
