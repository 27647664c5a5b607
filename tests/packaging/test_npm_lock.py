"""package-lock.json is complete for every platform, so `npm ci` accepts it.

npm refuses a lock that lacks an optional dependency of any locked package (the
other platforms' Anvil binaries were missing once); this checks the same rule
offline: every dependency a locked package declares resolves to a locked entry.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _resolve(packages, owner, name):
    """The lock entry npm's resolution would pick for `name` required by `owner`."""
    base = owner
    while True:
        key = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
        if key in packages:
            return key
        if not base:
            return None
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def test_every_declared_dependency_is_locked():
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = lock["packages"]
    missing = []
    for owner, entry in packages.items():
        for field in ("dependencies", "optionalDependencies"):
            for name in entry.get(field, {}):
                if name in entry.get("bundleDependencies", ()):
                    continue  # shipped inside the owner's tarball
                if _resolve(packages, owner, name) is None:
                    missing.append(f"{name} (needed by {owner or 'the root'})")
    assert not missing, "missing from package-lock.json: " + ", ".join(missing)


def test_anvil_binaries_for_every_platform():
    packages = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    wanted = packages["node_modules/@foundry-rs/anvil"]["optionalDependencies"]
    assert len(wanted) >= 5
    for name, version in wanted.items():
        assert packages[f"node_modules/{name}"]["version"] == version


def test_no_git_or_url_dependencies():
    """Every locked package comes from the registry (no GitHub tarballs `npm ci` must fetch)."""
    packages = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    remote = [k for k, v in packages.items()
              if k and not v.get("link") and not str(v.get("resolved", "https://registry.npmjs.org/"))
              .startswith("https://registry.npmjs.org/")]
    assert not remote, remote
