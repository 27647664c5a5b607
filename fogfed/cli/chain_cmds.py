"""``fogfed deploy`` and ``fogfed gas-report`` (filled in by the foundation issue)."""
