"""pyproject.toml gives compatible ranges, requirements.lock the exact tested pins."""
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
#: Exact pins kept on purpose (reason in pyproject.toml's comment).
EXACT_OK = {"ipfshttpclient", "ape-foundry"}


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lock():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _requirements():
    project = _project()
    return [Requirement(r) for r in project["dependencies"] + sum(project["optional-dependencies"].values(), [])]


def test_ranges_not_pins():
    pinned = [str(r) for r in _requirements()
              if r.name not in EXACT_OK and any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"exact pins belong in requirements.lock: {pinned}"


def test_every_direct_dependency_is_locked_inside_its_range():
    lock = _lock()
    for r in _requirements():
        version = lock.get(r.name.lower())
        assert version is not None, f"{r.name} is not pinned in requirements.lock"
        assert r.specifier.contains(version, prereleases=True), f"{r.name}=={version} is outside {r.specifier}"


def test_matplotlib_only_in_the_plot_extra():
    project = _project()
    assert not any(Requirement(r).name == "matplotlib" for r in project["dependencies"])
    assert [Requirement(r).name for r in project["optional-dependencies"]["plot"]] == ["matplotlib"]


def test_signing_uses_the_native_secp256k1_library():
    from eth_keys.backends import get_backend

    assert type(get_backend()).__name__ == "CoinCurveECCBackend"
