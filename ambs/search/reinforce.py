"""A REINFORCE-trained RNN controller (Zoph and Le) that emits configurations choice by choice.

At step t the controller (an LSTM cell) reads an embedding of its previous
action and a softmax picks action ``a_t`` for hyperparameter t:
categorical and ordinal ones by index, integers and reals by one of
``n_bins`` equal bins of their [0, 1] vector scale (a value drawn uniformly
inside the bin). Actions of hyperparameters a configuration leaves inactive
are not part of it and do not count. After each ``tell`` of m results the
controller takes one gradient step on

    -(1/m) sum_k sum_t log P(a_t | a_{t-1..1}; theta) (R_k - b)

(the REINFORCE rule), with ``b`` an exponential moving average of the
rewards, ``b <- beta b + (1 - beta) R``; the reward ``R`` is the objective,
divided by the spread of the rewards seen so far so that the step size does
not depend on the objective's units. Failures give no gradient.

Pure and deterministic for a seed: no I/O; the network is initialized from
the seed, sampling uses the search's generator, and updates follow the
order of the results told. Needs torch (imported when the search is made).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ambs.search.base import Result, Search
from ambs.space import _KIND_INTEGER, _KIND_NUMERIC

__all__ = ["Reinforce"]


class Reinforce(Search):
    """REINFORCE with a moving-average baseline over an LSTM controller.

    Args:
        problem: the problem or ConfigSpace space.
        random_state: seed.
        hidden: the controller's hidden size.
        lr: Adam learning rate of the controller.
        baseline_decay: beta of the moving-average baseline.
        n_bins: bins of an integer or real hyperparameter (an integer with
            fewer values gets one action per value).
        entropy_weight: bonus on the entropy of the policy (keeps exploring).
    """

    architecture_search = True

    def __init__(
        self,
        problem: Any,
        random_state: int | None = None,
        hidden: int = 32,
        lr: float = 0.02,
        baseline_decay: float = 0.8,
        n_bins: int = 8,
        entropy_weight: float = 0.01,
    ) -> None:
        super().__init__(problem, random_state)
        try:
            import torch
        except ImportError:
            raise ValueError("--method reinforce needs PyTorch: pip install torch") from None
        if not 0 <= baseline_decay < 1 or lr <= 0 or n_bins < 2 or hidden < 1:
            raise ValueError("reinforce needs 0 <= baseline_decay < 1, lr > 0, n_bins >= 2, hidden >= 1")
        self._torch = torch
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        self.baseline: float | None = None
        self.n_updates = 0
        sp = self.space
        self.n_actions = []
        for i in range(sp.dim):
            if sp.kinds[i] == _KIND_NUMERIC:
                self.n_actions.append(n_bins)
            elif sp.kinds[i] == _KIND_INTEGER:
                self.n_actions.append(int(min(sp.sizes[i], n_bins)))
            else:
                self.n_actions.append(max(int(sp.sizes[i]), 1))
        nn = torch.nn
        gen = torch.Generator().manual_seed(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            self.cell = nn.LSTMCell(hidden, hidden)
            self.embed = nn.ModuleList(nn.Embedding(k, hidden) for k in self.n_actions)
            self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in self.n_actions)
            self.start = nn.Parameter(torch.zeros(1, hidden))
        self.params = [*self.cell.parameters(), *self.embed.parameters(), *self.heads.parameters(), self.start]
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self._rewards: list[float] = []

    # -------------------------------------------------------- the controller
    def _logits(self, actions: Any) -> list[Any]:
        """Logits of every step for a batch of action sequences (teacher forcing), (m, k_t) each."""
        torch = self._torch
        m = actions.shape[0]
        h = self.start.expand(m, -1)
        c = torch.zeros_like(h)
        inp = self.start.expand(m, -1)
        out = []
        for t, head in enumerate(self.heads):
            h, c = self.cell(inp, (h, c))
            out.append(head(h))
            inp = self.embed[t](actions[:, t])
        return out

    def probabilities(self, prefix: list[int] | None = None) -> list[np.ndarray]:
        """The policy's distribution at each step along ``prefix`` (greedy past its end)."""
        torch = self._torch
        with torch.no_grad():
            acts: list[int] = list(prefix or [])
            h = self.start
            c = torch.zeros_like(h)
            inp = self.start
            probs = []
            for t, head in enumerate(self.heads):
                h, c = self.cell(inp, (h, c))
                p = torch.softmax(head(h), -1)[0].double().numpy()
                probs.append(p)
                a = acts[t] if t < len(acts) else int(p.argmax())
                inp = self.embed[t](torch.tensor([a]))
        return probs

    def _sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """m action sequences drawn from the controller, shape (m, dim)."""
        torch = self._torch
        acts = np.zeros((m, self.space.dim), dtype=np.int64)
        with torch.no_grad():
            h = self.start.expand(m, -1)
            c = torch.zeros_like(h)
            inp = self.start.expand(m, -1)
            for t, head in enumerate(self.heads):
                h, c = self.cell(inp, (h, c))
                p = torch.softmax(head(h).double(), -1).numpy()
                cum = p.cumsum(axis=1)
                u = rng.random(m)[:, None] * cum[:, -1:]
                acts[:, t] = np.minimum((u > cum).sum(axis=1), p.shape[1] - 1)
                inp = self.embed[t](torch.from_numpy(acts[:, t]))
        return acts

    # ------------------------------------------------ actions <-> vectors
    def _to_vectors(self, acts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sp = self.space
        x = np.empty(acts.shape, dtype=float)
        for i in range(sp.dim):
            k = self.n_actions[i]
            if sp.kinds[i] == _KIND_NUMERIC or (sp.kinds[i] == _KIND_INTEGER and k < sp.sizes[i]):
                x[:, i] = (acts[:, i] + rng.random(len(acts))) / k
            elif sp.kinds[i] == _KIND_INTEGER:
                hp = sp.hps[i]
                x[:, i] = hp.to_vector(np.asarray(hp.lower + acts[:, i], dtype=np.int64))
            else:
                x[:, i] = acts[:, i]
        return sp.repair(x, rng)

    def _to_actions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Action indices of vectors and the mask of active steps, shape (m, dim) each."""
        sp = self.space
        X = np.atleast_2d(X)
        active = np.isfinite(X)
        acts = np.zeros(X.shape, dtype=np.int64)
        for i in range(sp.dim):
            col = np.nan_to_num(X[:, i], nan=0.0)
            k = self.n_actions[i]
            if sp.kinds[i] == _KIND_NUMERIC or (sp.kinds[i] == _KIND_INTEGER and k < sp.sizes[i]):
                acts[:, i] = np.minimum(np.floor(col * k), k - 1)
            elif sp.kinds[i] == _KIND_INTEGER:
                hp = sp.hps[i]
                acts[:, i] = np.asarray(hp.to_value(col), dtype=np.int64) - hp.lower
            else:
                acts[:, i] = np.rint(col)
        return np.clip(acts, 0, np.array(self.n_actions) - 1), active

    # ----------------------------------------------------------- ask/tell
    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((0, self.space.dim))
        for _ in range(10):
            need = n - len(out)
            if need <= 0:
                break
            X = self._to_vectors(self._sample(max(2 * need, 8), rng), rng)
            X = np.vstack([out, X])
            out = X[self._is_new_within(X, len(out))][:n]
        if len(out) < n:  # the policy keeps proposing what was seen: fill at random
            rest = self._random_unseen(n, rng)
            X = np.vstack([out, rest])
            out = X[self._is_new_within(X, len(out))][:n]
        return out

    def tell(self, results: Iterable[Result]) -> None:
        results = list(results)
        start = self.n_told
        super().tell(results)
        X = np.array(self._X[start:])
        R = -np.array(self._y[start:], dtype=float)
        ok = np.isfinite(R)
        if ok.any():
            self._update(X[ok], R[ok])

    def _update(self, X: np.ndarray, R: np.ndarray) -> None:
        """One REINFORCE step on a batch of told vectors and their rewards."""
        torch = self._torch
        self._rewards.extend(R.tolist())
        scale = float(np.std(self._rewards)) if len(self._rewards) > 1 else 0.0
        scale = scale if scale > 1e-12 else max(abs(float(R.mean())), 1.0)
        adv = np.empty(len(R))
        for k, r in enumerate(R):  # the baseline moves as each result arrives
            b = r if self.baseline is None else self.baseline
            adv[k] = (r - b) / scale
            self.baseline = r if self.baseline is None else (
                self.baseline_decay * self.baseline + (1 - self.baseline_decay) * r)
        acts, active = self._to_actions(X)
        a = torch.from_numpy(acts)
        mask = torch.from_numpy(active.astype(np.float64)).float()
        logits = self._logits(a)
        logp = torch.zeros(len(R))
        entropy = torch.zeros(())
        for t, lg in enumerate(logits):
            lsm = torch.log_softmax(lg, -1)
            logp = logp + lsm.gather(1, a[:, t:t + 1])[:, 0] * mask[:, t]
            entropy = entropy - (lsm.exp() * lsm).sum(-1).mul(mask[:, t]).mean()
        loss = -(logp * torch.from_numpy(adv).float()).mean() - self.entropy_weight * entropy
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.n_updates += 1
