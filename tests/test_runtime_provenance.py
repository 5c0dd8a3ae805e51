"""Atomic writes, device selection, and what a stored result records."""
import json

import pytest
import torch

from zsl_lib import provenance
from zsl_lib.runtime import atomic_open, resolve_device


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]   # no temporary file left
    with atomic_open(target) as f:
        f.write("new")
    assert target.read_text() == "new" and oct(target.stat().st_mode & 0o777) == "0o644"


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no GPU; use .auto. or .cpu."):
            resolve_device("cuda")


def test_run_record_holds_everything_a_reader_needs(tmp_path):
    record = provenance.run_record("demo", {"lr": 0.1}, [0, 1], {"H": 12.5}, wall_time_s=3.21)
    for key in ("name", "date", "git_sha", "config", "seeds", "environment", "wall_time_s", "metrics"):
        assert key in record
    assert {"python", "torch", "timm", "numpy", "device"} <= set(record["environment"])
    provenance.save_json(tmp_path / "r.json", record)
    assert json.loads((tmp_path / "r.json").read_text()) == record == provenance.load_json(tmp_path / "r.json")
    assert "run 'demo'" in provenance.describe(record) and "seeds [0, 1]" in provenance.describe(record)
    assert "uncommitted" not in provenance.describe({**record, "git_sha": "0123456789abcdef"})
    assert "git 0123456789ab with uncommitted changes" in provenance.describe({**record, "git_sha": "0123456789abcdef-dirty"})
    with pytest.raises(FileNotFoundError, match="no stored result at"):
        provenance.load_json(tmp_path / "missing.json")


def test_a_rewritten_result_file_does_not_make_the_code_dirty(tmp_path):
    import subprocess
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "step.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    clean = provenance.git_sha(tmp_path)
    assert len(clean) == 40
    (tmp_path / "benchmarks" / "results" / "step.json").write_text('{"ratio": 0.5}\n')   # an earlier benchmark's output
    assert provenance.git_sha(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_sha(tmp_path) == clean + "-dirty"
