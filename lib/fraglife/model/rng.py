"""The workloads' one pseudo-random generator: splitmix64, written out so any
implementation (this one, a compiled generator) draws the identical stream.

splitmix64 is Steele, Lea and Flood's generator ("Fast splittable pseudorandom
number generators", OOPSLA 2014), in the form Vigna gives at
https://prng.di.unimi.it/splitmix64.c; a float is the top 53 bits over 2**53.
"""

from __future__ import annotations

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + GOLDEN) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * MIX1) & MASK
        z = ((z ^ (z >> 27)) * MIX2) & MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1)."""
        return (self.next() >> 11) * (1.0 / (1 << 53))
