"""Tunelab's trainer: pure PyTorch models, task codecs, rewards, MLE and REINFORCE loops.

Never imports Django: the platform calls into the trainer, not the other way round.
"""
