"""Models the trainer can tune: anything with `sample(images, n)` and `log_prob(images, tokens)`."""
