"""Meta-training: Stable-Baselines3 trainers over one task or a mix of task families."""
