"""Ape-format tests: run by `scripts/ape-solc.sh test tests/ape --network ethereum:local:foundry --gas`.

`ape test` registers Ape's pytest plugin, but pyproject's addopts
(`-p no:ape_test`, which keeps Ape out of the normal suite) unregisters it
again before pytest configures: its options are known by then, its fixtures
and runner are not. Configuring it here restores them for this folder only.
"""

from __future__ import annotations

import hashlib

import pytest

from ape.pytest import plugin as ape_plugin

LOCATION, SERVICE = "Riyadh", "Health"


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin("ape-test") is not None:
        return
    try:
        config.getoption("--network")
    except ValueError:
        raise pytest.UsageError(
            "tests/ape needs Ape's test runner: run "
            "`scripts/ape-solc.sh test tests/ape --network ethereum:local:foundry --gas`"
        ) from None
    ape_plugin.pytest_configure(config)


def file_id(content: bytes) -> bytes:
    """A file id as the contract expects it: the sha2-256 digest inside the ciphertext's CID."""
    return hashlib.sha256(content).digest()


@pytest.fixture
def tas(accounts):
    return accounts[0]


@pytest.fixture
def node(accounts):
    return accounts[1]


@pytest.fixture
def outsider(accounts):
    return accounts[2]


@pytest.fixture
def fogfed(project, tas):
    return tas.deploy(project.FogFed)


@pytest.fixture
def federation_id(fogfed, tas):
    fogfed.createFederation(LOCATION, SERVICE, b"\x01" * 96, 0, sender=tas)
    return fogfed.settings()["federationCount"]


@pytest.fixture
def member(fogfed, tas, node, federation_id):
    fogfed.addMember(federation_id, node, b"\x07" * 32, sender=tas)
    return node
