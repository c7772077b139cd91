"""A SamDSK round as background work: train, propose, predict and match, rank."""
