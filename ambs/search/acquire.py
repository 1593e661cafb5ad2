"""AMBS's acquisition optimizer: the candidates of one ask and the greedy
choice of a batch among them (steps 4 and 5 of :mod:`ambs.search.ambs`).

A mixin of :class:`ambs.search.ambs.AMBS`, whose state it reads: the space
and its encoding (``space``, ``_enc``), the seen points (``_is_new``,
``_random_unseen``, ``_seen``) and the acquisition options (``n_candidates``,
``n_recombine``, ``top_fraction``, ``top_min``, ``recombine_bandwidth``,
``local_starts``, ``n_local``, ``local_scales``, ``random_fraction``,
``kappa``, ``kappa_sampling``, ``lie_spread``). Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ambs.search.scorers import LcbScorer

__all__ = ["LAZY_BLOCK", "LAZY_FROM", "CandidateSearch"]

# Batches of at least this many points (thousands of free workers at once)
# are chosen by lazy greedy (CandidateSearch._lazy_greedy); smaller ones exactly.
LAZY_FROM = 64
LAZY_BLOCK = 32  # stale scores worked out again at a time


class CandidateSearch:
    """Scores candidates on a lied surrogate (a scorer) and chooses a batch."""

    def _acquire_for(self, n: int, rng: np.random.Generator, scorer: Any, ranked: np.ndarray,
                     n_starts: int | None = None) -> np.ndarray:
        """``n`` unseen points that ``scorer`` (see :mod:`ambs.search.scorers`) scores best, greedily, each
        point's lie folded before the next; ``ranked``: the results told,
        best first (where the local search starts: ``n_starts`` of them, by
        default the first of ``local_starts``)."""
        space = self.space

        def leaves(X: np.ndarray) -> Any:
            return scorer.locate(self._enc(X))

        # Random candidates, and candidates recombined from the best results.
        R = space.sample(self.n_candidates, rng)
        n_uniform = len(R)
        if self.n_recombine > 0:
            k = max(self.top_min, int(math.ceil(self.top_fraction * len(ranked))))
            R = np.vstack([R, space.recombine(ranked[:k], self.n_recombine, rng, self.recombine_bandwidth)])
        pool = [R]
        scorer.extend(leaves(R))
        s_rand = scorer.scores()
        # Local search from the best results and the best random candidates.
        k_obs, k_rand = self.local_starts
        k_obs = k_obs if n_starts is None else n_starts
        if self.n_local > 0 and self.local_scales and k_obs + k_rand > 0:
            starts = [ranked[:k_obs]]
            starts.append(R[np.argsort(s_rand + rng.random(len(R)) * 1e-12)[:k_rand]])
            S = np.vstack(starts)
            s_cur = scorer.peek(leaves(S))
            for scale in self.local_scales:
                N, parent = space.neighbors(S, self.n_local, rng, scale=scale, return_parents=True)
                if not len(N):
                    continue
                LN = leaves(N)
                sN = scorer.peek(LN) + rng.random(len(N)) * 1e-12
                pool.append(N)
                scorer.extend(LN)
                # The best neighbour of each start, if better, becomes the start.
                order = np.lexsort((sN, parent))
                par, first = np.unique(parent[order], return_index=True)
                top = order[first]
                better = sN[top] < s_cur[par]
                S[par[better]] = N[top[better]]
                s_cur[par[better]] = sN[top[better]]
        C = np.vstack(pool)
        ok = self._is_new(C)
        n_rand = n_uniform
        if ok.sum() < n:
            extra = self._random_unseen(n - int(ok.sum()), rng)
            if len(extra):
                C = np.vstack([C, extra])
                ok = self._is_new(C)
                scorer.extend(leaves(extra))
        if n >= LAZY_FROM and not self.kappa_sampling and isinstance(scorer, LcbScorer) and scorer.lazy:
            return C[self._lazy_greedy(n, rng, scorer, ok, n_rand)]
        chosen = []
        for _ in range(min(n, int(ok.sum()))):
            if self.random_fraction > 0 and rng.random() < self.random_fraction and ok[:n_rand].any():
                # Interleaved exploration: the next unused random candidate.
                i = int(np.flatnonzero(ok[:n_rand])[0])
            else:
                kappa = rng.exponential(self.kappa) if self.kappa_sampling else None
                s = scorer.scores(kappa)
                # Ties (flat regions of the forest) are broken at random.
                s = s + rng.random(len(s)) * 1e-12
                s[~ok] = np.inf
                i = int(np.argmin(s))
            ok[i] = False
            chosen.append(i)
            scorer.take(i, spread=self.lie_spread)
        return C[chosen]

    def _lazy_greedy(self, n: int, rng: np.random.Generator, scorer: LcbScorer, ok: np.ndarray,
                     n_rand: int) -> list[int]:
        """The greedy choice of a long batch with lazy scores (as lazy greedy
        does for submodular maximization, Minoux 1978): each point's lie is
        folded into the leaves without updating every candidate that shares
        one; the best score, possibly stale, is worked out again from the
        leaves, and taken if it is still the best. Scores that a lie lowered
        are seen late, so the batch differs a little from the exact greedy
        one; a fold costs a few small array operations instead of a pass over
        every candidate that shares a leaf with the point (thousands, in a
        batch of thousands)."""
        tie = rng.random(len(ok)) * 1e-12  # ties (flat regions of the forest) broken at random
        s = scorer.scores() + tie
        s[~ok] = np.inf
        stamp = np.full(len(ok), -1)  # the step at which each score was last worked out
        mu = np.zeros(len(ok))  # the predicted means worked out with them
        chosen: list[int] = []
        for step in range(min(n, int(ok.sum()))):
            if self.random_fraction > 0 and rng.random() < self.random_fraction and ok[:n_rand].any():
                i = int(np.flatnonzero(ok[:n_rand])[0])
            else:
                while True:
                    i = int(np.argmin(s))
                    if stamp[i] == step or not np.isfinite(s[i]):
                        break
                    # Work out the best few stale scores again, in one pass.
                    top = np.argpartition(s, LAZY_BLOCK)[:LAZY_BLOCK] if len(s) > LAZY_BLOCK else np.arange(len(s))
                    top = top[np.isfinite(s[top])]
                    fresh, mu[top] = scorer.scores_at(top)
                    s[top] = fresh + tie[top]
                    stamp[top] = step
            ok[i] = False
            s[i] = np.inf
            chosen.append(i)
            scorer.take(i, spread=self.lie_spread, track=False, mean=float(mu[i]) if stamp[i] == step else None)
        return chosen
