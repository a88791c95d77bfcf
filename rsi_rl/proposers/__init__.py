"""Example proposers for the ``propose`` action (see :mod:`rsi_rl.proposer`)."""
