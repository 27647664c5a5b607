"""Shared pytest set-up. Fixture modules live in tests/fixtures/ (one per server kind)."""

pytest_plugins = [
    "tests.fixtures.devnets",
    "tests.fixtures.ipfs",
]

# Ape-format tests run under `ape test tests/ape` (see tests/test_ape.py), not here.
collect_ignore = ["ape"]
