"""Plain marshmallow schemas for the seed APIs' JSON documents (``app/compat``)."""
