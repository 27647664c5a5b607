"""A fogfed deployment with a federation tree and the mobility contract, on the in-process chain.

Region R (region/health) over A (riyadh/health), B (jeddah/health) and C (dammam/health);
X (cairo/health) is another root. A: a0, a1, mover; B: b0; C: c0. The nodes are in ``world.named``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fogfed.chain import connect
from fogfed.chain.mobility import FogFedMobility, deploy_mobility
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority
from fogfed.tas.mobility import MobilityAuthority
from tests.e2e.conftest import LIGHT, PASS, System


@dataclass
class World(System):
    mobility: FogFedMobility | None = None
    authority: MobilityAuthority | None = None
    feds: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("mobility")
    chain = connect(None)
    accounts = chain.dev_accounts()
    tas = TrustedAuthority.init(root / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    mobility = tas.use_mobility(deploy_mobility(chain, tas.account, tas.fed))
    store = EmbeddedStore(root / "store")
    tas.use_store(store)
    w = World(chain, store, tas, [], root, accounts, mobility=mobility,
              authority=MobilityAuthority(tas, mobility))
    region = tas.create_federation("region", "health").federation_id
    w.feds = {"R": region, **{k: tas.create_federation(loc, "health", region).federation_id
                              for k, loc in (("A", "riyadh"), ("B", "jeddah"), ("C", "dammam"))},
              "X": tas.create_federation("cairo", "health").federation_id}
    for i, (name, loc) in enumerate((("a0", "riyadh"), ("a1", "riyadh"), ("mover", "riyadh"), ("b0", "jeddah"),
                                     ("c0", "dammam"))):
        node = w.new_node(name, accounts[i + 1], cache_bytes=8 << 20)
        tas.enroll(node.enrollment_request(loc, "health"), approve=True)
    yield w
    w.close()


@pytest.fixture
def plain(tmp_path):
    def make(text: str):
        path = tmp_path / f"{abs(hash(text))}.txt"
        path.write_text(text * 100)
        return path
    return make
