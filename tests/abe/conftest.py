"""Shared ABE systems: one setup per scheme for the whole test session (setups are cheap, but keys add up)."""

from __future__ import annotations

import pytest

from fogfed import abe


@pytest.fixture(scope="session", params=["fabeo", "fame", "bsw07"])
def system(request):
    """(scheme name, public key, master key) for each scheme."""
    pk, msk = abe.setup(request.param)
    return request.param, pk, msk


@pytest.fixture(scope="session")
def fame_system():
    return abe.setup("fame")
