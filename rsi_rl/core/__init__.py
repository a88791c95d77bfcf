"""Data and rules: tasks, knobs, roles, edits, patches, records, registries.

Imports nothing else of rsi_rl; every other layer builds on it.
"""
