"""The resource layer: who may do what, PATCH semantics, transactions. Returns models."""
