"""`python -m trainer ...`: see trainer/cli.py."""

import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a shared CPU, spinning threads of a
# 2-thread run were measured to make a step 6x slower (3.5 s instead of 0.58 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from trainer.cli import main  # after the environment is set

sys.exit(main())
