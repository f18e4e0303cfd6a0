"""Toy distributions, reference point sets and point-file errors."""

import hashlib
import math
from pathlib import Path

import pytest
import torch

from mixup_gan.toy.data import PointFileError, grid, make_distribution, read_points, ring
from mixup_gan.toy.reference import REFERENCE_SETS, write_reference_sets

TOY_DATA = Path(__file__).resolve().parent.parent / "toy_data"


def test_ring_and_grid_layouts():
    r = ring()
    torch.testing.assert_close(r.centers.norm(dim=1), torch.ones(8))
    assert r.std == 0.01 and len(r.centers) == 8
    g = grid()
    assert len(g.centers) == 25 and g.std == 0.01
    assert sorted(set(g.centers[:, 0].tolist())) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    wr, wg = ring("wgan-gp"), grid("wgan-gp")
    torch.testing.assert_close(wr.centers.norm(dim=1), torch.full((8,), 2 / 1.414))
    assert math.isclose(wr.std, 0.02 / 1.414) and math.isclose(wg.std, 0.05 / 2.828)


def test_sampling_is_seeded_and_near_the_modes():
    r = ring()
    a = r.sample(500, torch.Generator().manual_seed(3))
    assert torch.equal(a, r.sample(500, torch.Generator().manual_seed(3)))
    assert a.shape == (500, 2)
    assert float(torch.cdist(a, r.centers).min(1).values.max()) < 6 * r.std


def test_reference_sets_regenerate_byte_for_byte(tmp_path):
    digests = write_reference_sets(tmp_path)
    assert len(digests) == len(REFERENCE_SETS)
    for path, digest in digests.items():
        committed = TOY_DATA / Path(path).name
        assert hashlib.sha256(committed.read_bytes()).hexdigest() == digest, committed


def test_reference_checksums_in_readme():
    readme = (TOY_DATA / "README.md").read_text()
    for name in REFERENCE_SETS:
        digest = hashlib.sha256((TOY_DATA / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in readme


def test_point_file_round_trip(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("id,y,x\n1,0.5,1.5\n2,-1,2\n\n3,0,0\n")
    points = read_points(path)
    torch.testing.assert_close(points, torch.tensor([[1.5, 0.5], [2.0, -1.0], [0.0, 0.0]]))
    dist = make_distribution("points", path=str(path))
    drawn = dist.sample(50, torch.Generator().manual_seed(0))
    assert all(row in points.tolist() for row in drawn.tolist())


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x,z\n1,2\n3,4\n", r"line 1: missing column\(s\) y"),
        ("x,y\n1,2\n3,abc\n", "line 3: expected numbers"),
        ("x,y\n1,2\n3\n", "line 3: expected numbers"),
        ("x,y\n1,2\nnan,4\n", "line 3: non-finite"),
        ("x,y\n1,2\n", "at least 2 points, found 1"),
        ("", "empty"),
    ],
)
def test_bad_point_files_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PointFileError, match=match) as info:
        read_points(path)
    assert str(path) in str(info.value)


def test_points_need_a_path():
    with pytest.raises(ValueError, match="data.path is required"):
        make_distribution("points")
