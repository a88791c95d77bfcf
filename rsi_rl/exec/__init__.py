"""Running programs for the trusted parent: the sandbox and its fork server, the runner
(one experiment), the executor (many), the result cache and the scratch-directory readers.

Imports rsi_rl.core and rsi_rl.harness only.
"""
