"""Quality figures on held-out patients: retrieval (neighbour votes against a simulated archive's truth),
drafts against the studies' own reports; each beside its baseline and with its interval."""
