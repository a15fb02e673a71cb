"""What services build on to protect credentials: digests and sealing, who may do what
(policies), rate limits."""
