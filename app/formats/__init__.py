"""Value formats the configuration checks at start and the code using the values shares: pure
parsing, no Flask, no database access (foundation layer, beside config, errors, extensions)."""
