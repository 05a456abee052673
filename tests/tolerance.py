"""How close two float32 results must be, derived from the computation
(the rule is in tests/README.md, "Tolerances"). Every numeric comparison of
the Python suites goes through these helpers, so a tolerance is never a
constant tuned on one CPU.

- A whole forward pass (engine vs the float64 reference): the reference's
  rounding spread -- how far the logits move when every sum in the pass is
  moved by its worst-case float32 rounding error gamma(K) * sum |a_i b_i|
  (reference.Model.rounding_spread). Any correct float32 engine, whatever
  its summation order, CPU, kernel set or thread count, lies inside it.
- Two float32 runs of the engine (threads, kernel paths, F16 in place vs
  expanded, prefill vs decode): each is within the spread of the exact
  result, so they are within twice the spread of each other.
- Greedy sequences: equal token for token up to the first step where the
  reference's top two logits are closer than the spread (a near tie, where
  either choice is correct float32 arithmetic); past it they may differ.
- Exact equality only where the same operations run on the same inputs.
"""
import numpy as np

import reference

_models = {}
_spreads = {}


def ref_model(path):
    if path not in _models:
        _models[path] = reference.Model(path)
    return _models[path]


def logits_and_spread(path, tokens):
    """Exact (float64) logits (T, vocab) of `tokens` and their rounding spread."""
    key = (path, tuple(tokens))
    if key not in _spreads:
        _spreads[key] = ref_model(path).rounding_spread(list(tokens))
    return _spreads[key]


def assert_within(got, want, tol, what):
    """max |got - want| <= tol (NaN fails)."""
    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))
    assert err <= tol, f"{what}: max |error| {err:.3g} > tolerance {tol:.3g} (rounding spread)"
    return err


def assert_matches_reference(path, tokens, got, what="logits"):
    """Engine logits of `tokens` against the reference: got is (R, vocab),
    the last R positions' rows (R = T with logits for every position)."""
    want, spread = logits_and_spread(path, tokens)
    assert np.ndim(got) == 2 and got.shape[1] == want.shape[1], np.shape(got)
    return assert_within(got, want[len(want) - len(got):], spread, what)


def assert_runs_agree(path, tokens, a, b, what):
    """Two float32 runs of the engine over `tokens` (logits of the same rows)."""
    _, spread = logits_and_spread(path, tokens)
    return assert_within(a, b, 2 * spread, what)


def reference_greedy(path, prompt, n):
    """The reference's greedy continuation and how many of its leading tokens
    are decisive: at each of them the top-two logit margin exceeds twice the
    rounding spread, so every correct float32 engine must choose the same."""
    ref = ref_model(path)
    out = ref.greedy(prompt, n)
    logits, spread = logits_and_spread(path, list(prompt) + out[:-1])
    for i in range(n):
        top2 = np.sort(logits[len(prompt) - 1 + i])[-2:]
        if top2[1] - top2[0] <= 2 * spread:
            return out, i
    return out, n


def assert_greedy_matches(path, prompt, got, min_decisive=8):
    """Engine greedy tokens `got` against the reference's, up to its first
    near tie; at least min_decisive tokens (or all) must be decisive, so the
    test keeps its teeth. Returns how many tokens were compared."""
    want, decisive = reference_greedy(path, prompt, len(got))
    assert decisive >= min(min_decisive, len(got)), f"only {decisive} decisive tokens: choose another prompt"
    assert got[:decisive] == want[:decisive], f"engine {got}\nreference {want} (decisive for {decisive})"
    return decisive


def assert_greedy_agree(path, prompt, a, b, min_decisive=8):
    """Two engine runs' greedy tokens: both must follow the reference up to
    its first near tie."""
    n = assert_greedy_matches(path, prompt, a, min_decisive)
    assert_greedy_matches(path, prompt, b, min_decisive)
    return n

