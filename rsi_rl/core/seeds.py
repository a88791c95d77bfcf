"""Seeds shared by every command that trains a candidate.

``rsi-rl search`` seeds a campaign with ``seed=`` and trains every experiment of it on one
*evaluation seed* drawn from that seed; ``rsi-rl try`` uses the same evaluation seed for
the same ``seed=``, so a candidate scores the same in both.
"""

from __future__ import annotations

import numpy as np
from gymnasium.utils import seeding

#: evaluation seeds are drawn from ``[0, EVAL_SEED_HIGH)``
EVAL_SEED_HIGH = 2**31 - 1


def draw_evaluation_seed(rng: np.random.Generator) -> int:
    """The next evaluation seed from a campaign's random generator (the env's ``np_random``)."""
    return int(rng.integers(EVAL_SEED_HIGH))


def evaluation_seed(seed: int) -> int:
    """The evaluation seed of a campaign started with ``seed`` on a given instance.

    It is the first draw of the generator that ``ResearchEnv.reset(seed=seed,
    options={"instance": ...})`` seeds, i.e. the seed every experiment of that
    campaign trains on.

    Example:
        >>> evaluation_seed(0) == evaluation_seed(0)
        True
    """
    rng, _ = seeding.np_random(int(seed))
    return draw_evaluation_seed(rng)
