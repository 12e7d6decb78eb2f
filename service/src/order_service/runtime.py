"""Process settings of the long-running commands (``orders serve``, ``orders worker``).

The garbage collector: W3's profile (docs/benchmarks.md) found each full (oldest-generation)
collection taking about 60 ms of CPU in the web process under load, holding the GIL, so
stopping request handling and the SQLite writer alike: it walks every object the imports made
(Quart, pydantic, the app), none of which ever becomes garbage. So, once the app is built,
those objects are moved out of the collector's sight (:func:`gc.freeze`), and the youngest
generation is collected every :data:`GC_THRESHOLD` net allocations instead of 700: the little
cyclic garbage a request leaves (werkzeug's route matcher makes one closure cycle per request)
is still collected, in fewer passes. Reference counting, which frees almost everything, is
untouched.
"""

from __future__ import annotations

import gc

#: Net allocations of container objects between two collections of the youngest generation
#: (CPython's default: 700). The older generations keep their default ratios.
GC_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect once, freeze what survives (the imports, the app) and raise the threshold."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)
