"""Training: run config, presets, backends, the training loop, memory estimate."""
