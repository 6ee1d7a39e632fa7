"""The package's public names: each one resolves, and importing the package loads none of
them (a script that only asks for --help should not pay for numpy or the model)."""

import subprocess
import sys

import pytest

import semsearch


def test_every_public_name_resolves():
    for name in semsearch.__all__:
        assert getattr(semsearch, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        semsearch.NoSuchThing  # noqa: B018


def test_importing_the_package_loads_nothing_heavy():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, semsearch; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert not {"numpy", "onnxruntime", "ray", "faiss"} & set(loaded)


def test_ray_settings_are_public_for_a_build_on_a_cluster():
    settings = semsearch.RaySettings(address="ray://head:10001", actors=4)
    assert (settings.address, settings.actors, settings.device) == ("ray://head:10001", 4,
                                                                     "auto")
