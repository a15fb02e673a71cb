"""Engine set-up per database, the request's transaction mode, upserts, row counts."""
