"""What a campaign keeps: the SQLite ledger and deterministic-replay resume."""
