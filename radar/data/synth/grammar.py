"""The workflow grammar: nodes that emit a session's events, with seeded jitter and drift.

A workflow is a tree of nodes: :class:`Ev` (one event), :class:`Seq` (in order),
:class:`Opt` (maybe), :class:`Alt` (one of several), :class:`Rep` (a loop) and
:class:`Par` (interleaved concurrent copies). Each node emits (template key, required)
pairs. "Required" events appear in every run of their workflow in a fixed order; anomaly
injection deletes or swaps only those. ``jitter`` makes one seed's system of the family,
``drift`` moves it a day later.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass
class Count:
    """A loop count: uniform in [lo, hi], or log-normal around ``median`` clipped to it."""
    lo: int
    hi: int
    median: float = 0.0
    sigma: float = 0.0

    def draw(self, rng: random.Random) -> int:
        if self.sigma <= 0:
            return rng.randint(self.lo, self.hi)
        return min(self.hi, max(self.lo, round(self.median * math.exp(rng.gauss(0, self.sigma)))))

    def jitter(self, rng: random.Random) -> Count:
        return Count(self.lo, self.hi, self.median * rng.uniform(0.75, 1.3), self.sigma)

    def drift(self, rng: random.Random, sigma: float) -> Count:
        if self.sigma <= 0:         # uniform counts keep their range
            return self
        return Count(self.lo, self.hi, self.median * walk_step(rng, sigma / 4), self.sigma)


def walk_step(rng: random.Random, sigma: float) -> float:
    """One multiplicative random-walk step: log-normal with median 1."""
    return math.exp(rng.gauss(0, sigma))


class Node:
    def emit(self, rng: random.Random, out: list, required: bool) -> None:
        raise NotImplementedError

    def jitter(self, rng: random.Random) -> Node:
        return self

    def drift(self, rng: random.Random, sigma: float) -> Node:
        """This node a day later: branch weights, optional-step odds and loop lengths
        moved by one random-walk step (``sigma``); the grammar itself stays."""
        return self


@dataclass
class Ev(Node):
    key: str

    def emit(self, rng, out, required):
        out.append((self.key, required))


@dataclass
class Seq(Node):
    children: list

    def emit(self, rng, out, required):
        for child in self.children:
            child.emit(rng, out, required)

    def jitter(self, rng):
        return Seq([c.jitter(rng) for c in self.children])

    def drift(self, rng, sigma):
        return Seq([c.drift(rng, sigma) for c in self.children])


@dataclass
class Opt(Node):
    p: float
    child: Node

    def emit(self, rng, out, required):
        if rng.random() < self.p:
            self.child.emit(rng, out, False)

    def jitter(self, rng):
        return Opt(min(0.95, self.p * rng.uniform(0.6, 1.5)), self.child.jitter(rng))

    def drift(self, rng, sigma):
        return Opt(min(0.95, self.p * walk_step(rng, sigma / 2)), self.child.drift(rng, sigma))


@dataclass
class Alt(Node):
    weights: list
    children: list

    def emit(self, rng, out, required):
        rng.choices(self.children, self.weights)[0].emit(rng, out, False)

    def jitter(self, rng):
        return Alt([w * rng.uniform(0.6, 1.5) for w in self.weights],
                   [c.jitter(rng) for c in self.children])

    def drift(self, rng, sigma):
        return Alt([w * walk_step(rng, sigma) for w in self.weights],
                   [c.drift(rng, sigma) for c in self.children])


@dataclass
class Rep(Node):
    count: Count
    child: Node

    def emit(self, rng, out, required):
        for _ in range(self.count.draw(rng)):
            self.child.emit(rng, out, False)

    def jitter(self, rng):
        return Rep(self.count.jitter(rng), self.child.jitter(rng))

    def drift(self, rng, sigma):
        return Rep(self.count.drift(rng, sigma), self.child.drift(rng, sigma))


@dataclass
class Par(Node):
    """``count`` concurrent copies of ``child`` whose events interleave (order kept per copy)."""
    count: Count
    child: Node

    def emit(self, rng, out, required):
        branches = []
        for _ in range(self.count.draw(rng)):
            branch: list = []
            self.child.emit(rng, branch, False)
            branches.append(branch[::-1])
        while branches:
            branch = rng.choice(branches)
            out.append(branch.pop())
            if not branch:
                branches.remove(branch)

    def jitter(self, rng):
        return Par(self.count, self.child.jitter(rng))

    def drift(self, rng, sigma):
        return Par(self.count, self.child.drift(rng, sigma))
