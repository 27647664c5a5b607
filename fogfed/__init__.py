"""fogfed: keep end users' data safe from rogue fog nodes.

Layers (crypto ``abe``, chain access ``chain``, storage ``storage``) sit
below the roles (TAS, fog node, auditor) and the CLI; layers never import
roles.
"""

__version__ = "0.1.0"
