"""Store: bounded state. In memory (tiers, cap) or in a SQLite file shared by processes."""
