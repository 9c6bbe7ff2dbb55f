"""Stats: the read side. Store -> frozen dataclasses, behind one ``StatsView`` protocol."""
