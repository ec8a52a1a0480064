"""Training: run configs, MLE pretraining, REINFORCE tuning, checkpoints and metrics logs."""
