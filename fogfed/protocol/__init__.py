"""Formats the TAS and the fog node share: attribute names and policies, enrollment
requests, sealed key delivery, file references.

A neutral layer between the roles: it imports the layers (abe, keys, storage),
never a role, so the TAS and the node can both depend on it.
"""

from fogfed.protocol.attributes import (
    attributes_hash,
    cover_clause,
    federation_attribute,
    node_attributes,
    normalise_location,
    normalise_service,
    scoped_policy,
    tree_attribute,
)
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.protocol.keydelivery import KeyDeliveryError, key_aad, open_node_key, seal_node_key
from fogfed.protocol.files import cid_of_file_id, encsk_aad, file_id_of_cid, STREAM_AAD

__all__ = [
    "EnrollmentRejected", "EnrollmentRequest", "KeyDeliveryError", "STREAM_AAD", "attributes_hash", "cid_of_file_id",
    "cover_clause", "encsk_aad", "federation_attribute", "file_id_of_cid", "key_aad",
    "node_attributes", "normalise_location", "normalise_service", "open_node_key", "scoped_policy",
    "seal_node_key", "tree_attribute",
]
