"""Push transport: HTTP/2 client core, the APNs protocol, the provider token."""
