"""The uint8 memory-mapped cache, the JPEG path it replaces, and augmentation on tensors."""
import numpy as np
import pytest
import torch
from PIL import Image

from zsl_lib import checkpoint
from zsl_lib.imagecache import JpegImages, build_cache, load_image, open_cache, random_resized_crop_flip
from zsl_lib.train import TrainConfig, train
from zsl_lib.vspcn import preset
from zsl_lib.vspcn.experiment import build


def write_jpegs(folder, images, size=(96, 72)):
    paths = []
    for i, img in enumerate(images):
        path = folder / f"class_{i % 3}" / f"img_{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).resize(size).save(path, quality=90)
        paths.append(path)
    return paths


def test_cache_holds_what_the_jpeg_path_reads(tmp_path, smoke_world):
    paths = write_jpegs(tmp_path / "jpg", smoke_world.images[:12])
    cache = build_cache(paths, 64, tmp_path / "cache.npy", log=None)
    assert isinstance(cache, np.memmap) and cache.shape == (12, 64, 64, 3) and cache.dtype == np.uint8
    jpeg = JpegImages(paths, 64)
    assert np.array_equal(cache[[2, 5, 7]], jpeg[[2, 5, 7]]) and np.array_equal(cache[3], jpeg[3])
    # the 96 x 72 JPEG: shorter side 72 -> 64, then the centre 64 x 64
    assert load_image(paths[0], 64).shape == (64, 64, 3)

    stamp = (tmp_path / "cache.npy").stat().st_mtime_ns
    build_cache(paths, 64, tmp_path / "cache.npy", log=None)                  # up to date: reused
    assert (tmp_path / "cache.npy").stat().st_mtime_ns == stamp
    assert build_cache(paths[:5], 64, tmp_path / "cache.npy", log=None).shape[0] == 5   # other files: rebuilt
    assert not list(tmp_path.glob(".*partial"))


def test_bad_images_and_caches_give_clear_errors(tmp_path, smoke_world):
    paths = write_jpegs(tmp_path, smoke_world.images[:2])
    paths[1].write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"img_001.jpg cannot be decoded .*re-download or replace"):
        build_cache(paths, 64, tmp_path / "cache.npy", log=None)
    assert not (tmp_path / "cache.npy").exists()
    with pytest.raises(FileNotFoundError, match=r"missing.jpg does not exist; check the dataset root"):
        load_image(tmp_path / "missing.jpg", 64)
    np.save(tmp_path / "floats.npy", np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="is not an image cache"):
        open_cache(tmp_path / "floats.npy")
    with pytest.raises(FileNotFoundError, match="no image cache at"):
        open_cache(tmp_path / "none.npy")


def test_training_on_the_memory_map_equals_training_in_memory(tmp_path, smoke_world):
    tv = smoke_world.splits["trainval"][:64]
    np.save(tmp_path / "imgs.npy", smoke_world.images[tv])
    states = []
    for images in (smoke_world.images[tv], open_cache(tmp_path / "imgs.npy")):
        model = build(smoke_world, preset("paper_default"), smoke_world.seen_classes, seed=0)
        train(model, images, smoke_world.labels[tv], TrainConfig(steps=2, batch_size=16, device="cpu"),
              log=lambda *_: None, normalize=smoke_world.normalize)
        states.append(checkpoint.trainable_state(model))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_augmentation_on_tensors():
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(random_resized_crop_flip(x, scale=(1, 1), flip=0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(random_resized_crop_flip(x, scale=(1, 1), flip=1.0), x.flip(3), atol=1e-5, rtol=0)
    torch.manual_seed(0)
    a = random_resized_crop_flip(x)
    torch.manual_seed(0)
    assert torch.equal(a, random_resized_crop_flip(x)) and a.shape == x.shape
    # a crop of a quarter of the area is magnified 2x: a horizontal ramp rises half as fast per pixel
    ramp = torch.linspace(-1, 1, 16).expand(1, 1, 16, 16).contiguous()
    torch.manual_seed(0)
    crop = random_resized_crop_flip(ramp, scale=(0.25, 0.25), flip=0.0)
    assert torch.allclose(2 * (crop[0, 0, :, 9] - crop[0, 0, :, 8]), ramp[0, 0, :, 9] - ramp[0, 0, :, 8], atol=1e-4)
