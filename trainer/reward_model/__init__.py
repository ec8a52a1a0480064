"""Learned reward models: score (image, model output) from human feedback, for REINFORCE.

- `encoders.py`: how a task's output is drawn for the model (detection: boxes as channels);
- `model.py`: the network, batched `score`, checkpoints; `config.py`: its run config;
- `losses.py`: Bradley-Terry (pairs), Plackett-Luce (rankings), cumulative logit (ratings);
- `data.py`: feedback datasets; `train.py`: the training loop and held-out pairwise accuracy;
- `simulate.py`: simulated annotators (hidden gold score plus noise);
- `candidates.py`: outputs to compare (perturbed ground truth or policy samples) and
  simulated feedback datasets; `reward.py`: the model as a REINFORCE reward.

`python -m trainer.reward_model` trains one on simulated preferences and prints its figures.
"""
