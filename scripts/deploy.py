"""Ape script: deploy FogFed. Run `scripts/ape-solc.sh run deploy --network ethereum:local:foundry`.

The deployer is Ape's first test account on a local network; on any other
network Ape asks which of your Ape accounts to use. The deployer becomes the
contract's admin and TAS operator.
"""

from ape import accounts, networks, project
from ape.cli import select_account


def main() -> None:
    if networks.provider.network.name == "local":
        deployer = accounts.test_accounts[0]
    else:
        deployer = select_account("Deploy FogFed from which account?")
    contract = deployer.deploy(project.FogFed)
    receipt = contract.creation_metadata.receipt
    print(f"FogFed deployed at {contract.address}")
    print(f"block {receipt.block_number}, gas used {receipt.gas_used}, deployer {deployer.address}")
