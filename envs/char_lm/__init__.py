"""The `char_lm` task: a small character-level transformer language model (val bits per byte)."""
