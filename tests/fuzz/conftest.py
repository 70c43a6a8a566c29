"""Hypothesis profiles for the fuzz targets.

`ci` (the default, used by scripts/test.sh): derandomized, so every run
tries the same inputs and a pass never turns into a failure by chance; no
example database; no deadline (the targets bound memory and hangs
themselves). PORTIQUE_FUZZ_EXAMPLES sets the number of inputs per test.
`long` (HYPOTHESIS_PROFILE=long): random, many more inputs, for hunting.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("PORTIQUE_FUZZ_EXAMPLES", "150")),
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.register_profile(
    "long",
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("PORTIQUE_FUZZ_EXAMPLES", "20000")),
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
