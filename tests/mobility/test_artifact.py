"""The second artifact (FogFedMobility) is built by the same compile path and is fresh."""

from __future__ import annotations

from fogfed.chain.artifacts import load_artifact, read_sources, sources_hash
from fogfed.chain.compile import compile_all


def test_both_artifacts_are_fresh():
    sources = read_sources()
    fresh = compile_all(sources)
    assert set(fresh) == {"FogFed", "FogFedMobility"}
    for name, artifact in fresh.items():
        committed = load_artifact(name)
        for key in ("abi", "bytecode", "deployedBytecode", "compiler", "sourcesHash"):
            assert artifact[key] == committed[key], f"{name}.{key} is stale: run python -m fogfed.chain.compile"
    assert load_artifact("FogFedMobility")["sourcesHash"] == sources_hash(sources)
