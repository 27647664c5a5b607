"""Two TAS processes sending from one account at once (e.g. `tas watch` beside `tas enroll`):
the chain layer's nonce handling must keep every transaction, on Anvil and on the persistent
embedded chain."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fogfed.chain import FogFed, connect
from fogfed.keys.keystore import KdfParams
from fogfed.tas import TrustedAuthority

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "tas passphrase"
PER_PROCESS = 6

# Each process opens its own TAS home (same account, same contract) and creates federations.
WORKER = """
import sys
from fogfed.chain import connect
from fogfed.tas import TrustedAuthority
rpc, home, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tas = TrustedAuthority.open(home, connect(rpc), {passphrase!r})
for i in range(count):
    tas.create_federation(f"{{tag}}{{i}}", "svc")
""".format(passphrase=PASS)


@pytest.mark.parametrize("kind", ["anvil", "embedded"])
def test_two_processes_one_account_lose_no_transaction(kind, request, tmp_path):
    rpc = request.getfixturevalue("anvil_url") if kind == "anvil" else f"embedded:{tmp_path / 'chain'}"
    chain = connect(rpc)
    account = chain.dev_accounts()[0]
    first = TrustedAuthority.init(tmp_path / "tas-a", chain, PASS, account=account, kdf=LIGHT)
    TrustedAuthority.init(tmp_path / "tas-b", chain, PASS, account=account, fed=first.contract_address, kdf=LIGHT)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, rpc, str(tmp_path / f"tas-{t}"), f"loc{t}",
                               str(PER_PROCESS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for t in ("a", "b")]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    fed = FogFed.at(chain, first.contract_address)
    assert fed.settings().federation_count == 2 * PER_PROCESS
    created = {(e.args["location"]) for e in fed.events(names=["FederationCreated"])}
    assert created == {f"loc{t}{i}" for t in ("a", "b") for i in range(PER_PROCESS)}
