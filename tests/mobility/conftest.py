"""A fogfed deployment with a federation tree and the mobility contract, on the in-process chain.

Region R (region/health) over A (riyadh/health), B (jeddah/health) and C (dammam/health);
X (cairo/health) is another root. A: a0, a1, mover; B: b0; C: c0.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fogfed.chain import connect
from fogfed.chain.mobility import FogFedMobility, deploy_mobility
from fogfed.keys import KdfParams
from fogfed.node import FogNode
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority
from fogfed.tas.mobility import MobilityAuthority

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "mobility passphrase"


@dataclass
class World:
    chain: object
    store: EmbeddedStore
    tas: TrustedAuthority
    mobility: FogFedMobility
    authority: MobilityAuthority
    feds: dict
    nodes: dict
    root: object

    def new_node(self, name: str, account=None) -> FogNode:
        node = FogNode.init(self.root / name, self.chain, self.tas.contract_address, self.store, PASS,
                            account=account, kdf=LIGHT, cache_bytes=8 << 20)
        self.nodes[name] = node
        return node


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("mobility")
    chain = connect(None)
    accounts = chain.dev_accounts()
    tas = TrustedAuthority.init(root / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    mobility = deploy_mobility(chain, tas.account, tas.fed)
    w = World(chain, EmbeddedStore(root / "store"), tas, mobility, MobilityAuthority(tas, mobility), {}, {}, root)
    region = tas.create_federation("region", "health").federation_id
    w.feds = {"R": region, **{k: tas.create_federation(loc, "health", region).federation_id
                              for k, loc in (("A", "riyadh"), ("B", "jeddah"), ("C", "dammam"))},
              "X": tas.create_federation("cairo", "health").federation_id}
    for i, (name, loc) in enumerate((("a0", "riyadh"), ("a1", "riyadh"), ("mover", "riyadh"), ("b0", "jeddah"),
                                     ("c0", "dammam"))):
        node = w.new_node(name, accounts[i + 1])
        w.authority.enroll(node.enrollment_request(loc, "health"), approve=True)
    yield w
    for node in w.nodes.values():
        node.close()


@pytest.fixture
def plain(tmp_path):
    def make(text: str):
        path = tmp_path / f"{abs(hash(text))}.txt"
        path.write_text(text * 100)
        return path
    return make
