"""The JSON:API protocol: media types, documents, query parameters, errors, links."""
