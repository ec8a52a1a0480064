"""Tasks: how a task's outputs become token sequences, how samples are scored and evaluated.

The REINFORCE loop talks to a task only through `reward(tokens, batch, n)` and
`aux_loss(logits, tokens, scored)`, so a new head (captioning, panoptic, colorization) reuses it.
"""
