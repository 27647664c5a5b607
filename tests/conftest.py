"""Shared pytest set-up. Fixture modules live in tests/fixtures/ (one per server kind)."""

pytest_plugins = [
    "tests.fixtures.devnets",
    "tests.fixtures.ipfs",
]
