"""Learned reward models: score (image, model output) from human feedback, for REINFORCE, for
detection, captioning, colorization and panoptic segmentation.

- `outputs.py`: each task's outputs as the model sees them (boxes, caption tokens, colorized
  images, panoptic maps); `encoders.py`: how they are drawn as image channels;
- `model.py`: the network and its readouts, batched `score_outputs`, checkpoints (its run
  config is `trainer.configs.RewardModelConfig`); `policy_readout.py`: readouts started from
  the task's policy network;
- `losses.py`: Bradley-Terry (pairs), Plackett-Luce (rankings), cumulative logit (ratings);
- `data.py`: feedback datasets; `train.py`: the training loop and held-out pairwise accuracy;
- `simulate.py`: simulated annotators (hidden gold score plus noise) and what the noise does;
- `tasks.py`: per task, outputs of policy samples, gold of outputs, perturbations, batches;
- `perturb.py`: outputs spoilt from the ground truth; `candidates.py`: outputs to compare
  (perturbed ground truth or policy samples) and simulated feedback datasets;
- `reward.py`: the model as a REINFORCE reward.

`python -m trainer.reward_model` trains one on simulated preferences and prints its figures.
"""
