"""API: the HTTP edge. Parses, calls the analysis service or stats, renders; computes nothing."""
