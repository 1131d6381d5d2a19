r"""The general Laplace objective: any density, several linear predictors, exact gradient.

Model. Channels ``c`` of a response density (``mu``, ``zi``, ``phi``, family parameters)
have linear predictors ``eta_c = X_c beta_c + offset_c + [A u]_c`` (family parameters: a
scalar). The random effects ``u ~ N(0, I_q)`` enter the channels of the components that
have random-effects terms through ``A`` (:mod:`.random_structure`; ``b_t = Lambda_t u_t``,
``Lambda_t`` from the term's ``theta``, so ``Var(b_t) = Lambda_t Lambda_t'`` -- absolute,
not relative to a residual variance as in lme4). With ``l_i`` the log-density of
observation ``i`` (prior weights included) the Laplace approximation of minus twice the
log-likelihood is

.. math::

    F(x) = -2 \sum_i l_i(\hat\eta_i) + \|\hat u\|^2 + \log\det H, \qquad
    H = I + \sum_i A_i' W_i A_i, \quad W_i = -\frac{\partial^2 l_i}{\partial\eta\,\partial\eta'},

at the conditional mode ``\hat u`` of ``f(u) = -\sum_i l_i + \|u\|^2/2`` (found by a damped
Newton iteration, :meth:`LaplaceObjective.modes`).

Gradient (as TMB: the envelope theorem plus the derivative of ``log det H``, which needs the
third derivatives of ``l`` along the implicit path ``d\hat u/dx = -H^{-1}
\partial^2 f/\partial u\,\partial x``). Per observation, with ``B_i = H^{-1}[J_i, J_i]`` (the
inverse on the observation's slots), ``S_i = A_i B_i A_i'``, ``T_i = -\partial^3 l_i`` and

.. math::

    r_{im} = \sum_{kl} S_{i,kl} T_{i,klm}, \qquad g_u = \sum_i A_i' r_{i,\cdot},
    \qquad z = H^{-1} g_u, \qquad \gamma_{ic} = -2\,l'_{ic} + r_{ic}
        + \sum_k (A_i z)_k\, l''_{i,kc},

the derivative with respect to a fixed effect of channel ``c`` is ``X_c' \gamma_c``, with
respect to a scalar family parameter ``\sum_i \gamma_{ic}``, and with respect to a
parameter of term ``t`` (channel ``k``, columns ``a``)
``\langle \partial\Lambda_t/\partial\theta_j, Z_t' V_t \rangle`` with

.. math::

    V_{t,ia} = \gamma_{ik}\, \hat u_{t,\ell(i),a} + l'_{ik}\, z_{t,\ell(i),a}
        + 2\,[B_i A_i' W_i]_{s_t(a), k}.

Each evaluation is one Newton solve of the modes, one factorization of ``H`` at the mode
and, for the gradient, one selected inverse and one solve.

REML (``reml=True``, glmmTMB's): the conditional fixed effects join the inner vector with a
flat prior (:mod:`.random_structure`), and ``F`` gains ``-p log(2 pi)`` -- for a Gaussian
response exactly lme4's REML criterion.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import numpy as np

from ..._errors import MixedModelsError
from .hessian import factor_at, make_hessian, slot_quadratics, slot_weighted_inverse
from .random_structure import RandomStructure

__all__ = [
    "CHANNEL_OF_COMPONENT",
    "INNER_MAXIT",
    "INNER_MAX_HALVINGS",
    "INNER_TOL",
    "LaplaceObjective",
    "LaplaceSolution",
    "ModesError",
]

#: Density channel fed by each linear-predictor component.
CHANNEL_OF_COMPONENT = {"cond": "mu", "zi": "zi", "disp": "phi"}
#: Largest Newton step (in u, which is standard normal a priori) at convergence.
INNER_TOL = 1e-10
#: Newton iterations allowed for the conditional modes.
INNER_MAXIT = 100
#: A full Newton step shorter than this ends the iteration (quadratic convergence leaves
#: the modes ~its square, 1e-14, from the exact ones).
INNER_STEP_DONE = 1e-7
#: A full Newton step shorter than this is taken as the last: the point it reaches is
#: ~its square (1e-10) from the mode, well inside the accuracy the gradient needs.
INNER_STEP_FINAL = 1e-5
#: Predicted starts closer than this (largest parameter change) are evaluated over every
#: channel at once: they are usually already the mode.
PREDICT_FULL_DX = 1e-3
#: Predicted starts closer than this (largest parameter change) take their first Newton
#: step with the reference's factor of ``H`` (:meth:`LaplaceObjective.modes`): the
#: differences of a closing Hessian (steps 2e-5) and the last quasi-Newton iterations.
CHORD_DX = 1e-4
#: Inner gradient (``u - A' l'``) above which the modes of a quadratic inner problem get one
#: step of iterative refinement (:meth:`LaplaceObjective._refine`); at a well-conditioned
#: mode it is ~1e-12.
INNER_REFINE_GTOL = 1e-8
#: Longest Newton step (largest change of any spherical random effect) taken at once.
INNER_MAX_STEP = 4.0
#: Step halvings allowed per Newton iteration.
INNER_MAX_HALVINGS = 30
#: Relative slack when comparing penalized objectives (rounding in sums of n terms).
INNER_ROUNDING = 1e-13
#: Smallest curvature kept when a Newton Hessian must be made positive definite.
MIN_CURVATURE = 1e-10
#: Largest condition number of a term's ``Lambda`` for which the covariance-parameter
#: gradient is formed relative to it (``Lambda^{-1} dLambda``); beyond it the inverse
#: would carry more rounding than the direct form.
RELATIVE_COND_MAX = 1e6


class ModesError(MixedModelsError):
    """The conditional modes of the random effects could not be found."""


@dataclass(frozen=True)
class LaplaceSolution:
    """Everything determined by the parameters at the conditional modes.

    Attributes
    ----------
    x : ndarray
        Full parameter vector (layout order).
    objective : float
        ``F(x)``, minus twice the Laplace log-likelihood.
    u : ndarray (q,)
        Conditional modes of the spherical random effects.
    b : list of ndarray
        Random effects per term (``Lambda_t u_t``, levels x p), in the structure's order.
    eta : ndarray (n, m)
        Linear predictors of every density channel at the modes.
    logdet : float
        ``log det H``.
    loglik_terms : ndarray (n,)
        ``l_i`` at the modes.
    n_iter : int
        Newton iterations used.
    inner_beta : ndarray
        REML: the conditional modes of the integrated fixed effects in the user's
        coordinates, ``T beta~`` (empty otherwise; ``u`` ends with ``beta~``, the
        coordinates of :attr:`RandomStructure.X_int <.random_structure.RandomStructure>`).
    """

    x: np.ndarray
    objective: float
    u: np.ndarray
    b: list
    eta: np.ndarray
    logdet: float
    loglik_terms: np.ndarray
    n_iter: int
    inner_beta: np.ndarray


class LaplaceObjective:
    """``x -> F(x)`` and its gradient for a density and its linear predictors.

    Parameters
    ----------
    density : ModelDensity
        Log-density with derivatives per channel (:mod:`mixedmodels.families.density`);
        ``density.channels`` names the channels in the order of its derivatives.
    y : ndarray (n,)
    components : dict
        ``{component name: LinearPredictor}`` (``cond``, ``zi``, ``disp``).
    layout : ParameterLayout
        Blocks ``beta.<component>``, ``theta.<component>`` (components with random
        effects) and ``family.<channel>`` (scalar family parameters).
    weights, size : ndarray, optional
        Prior weights (multiplying the log-density) and binomial trials.
    reml : bool
        Integrate the conditional fixed effects out (then the layout has no ``beta.cond``).
    """

    def __init__(self, density, y, components: dict, layout, *, weights=None, size=None,
                 reml: bool = False):
        self.density = density
        self.y = np.asarray(y, dtype=float)
        self.n = self.y.shape[0]
        self.weights = weights
        self.size = size
        self.layout = layout
        self.channels: tuple[str, ...] = tuple(density.channels)
        self.m = len(self.channels)
        index = {c: j for j, c in enumerate(self.channels)}
        # fixed parts: (channel index, X, offset, beta block name)
        self._linear = []
        for name, lp in components.items():
            ch = CHANNEL_OF_COMPONENT[name]
            if ch not in index:
                raise ValueError(f"component {name!r} has no channel {ch!r} in the density "
                                 f"(channels {self.channels})")
            self._linear.append((index[ch], lp.X, lp.offset, f"beta.{name}"))
        self._scalar = [(index[c], f"family.{c}") for c in self.channels
                        if f"family.{c}" in layout]
        fed = {j for j, *_ in self._linear} | {j for j, _ in self._scalar}
        missing = [self.channels[j] for j in range(self.m) if j not in fed]
        if missing:
            raise ValueError(f"density channels {missing} have no linear predictor or "
                             "family parameter")
        re_comps = [(name, lp) for name, lp in components.items() if lp.terms]
        self.reml = bool(reml)
        if self.reml and "beta.cond" in layout:
            raise ValueError("with reml=True the conditional fixed effects are integrated "
                             "out: the layout must not have a 'beta.cond' block")
        integrated = ("cond", components["cond"]) if self.reml else None
        self.structure = RandomStructure(re_comps, integrated)
        self.re = np.array([index[CHANNEL_OF_COMPONENT[name]]
                            for name in self.structure.channels], dtype=np.intp)
        self._penalty = self.structure.penalty
        self._penalized = self._penalty > 0
        self._all_penalized = bool(np.all(self._penalized))
        # -p log(2 pi), and the Jacobian of the basis the fixed effects are integrated in
        # (random_structure's docstring: F in the user's X is F in X~ - 2 log|det T|)
        self._reml_const = (-self.structure.X_int.shape[1] * np.log(2.0 * np.pi)
                            - 2.0 * self.structure.int_log_det_T if self.reml else 0.0)
        self._theta_blocks = [f"theta.{name}" for name, _ in re_comps]
        #: names of the channels with random effects (the inner problem's variables)
        self._re_names = tuple(self.channels[j] for j in self.re)
        links = getattr(density, "links", {})
        self._links = [(j, links[c]) for j, c in enumerate(self.channels) if c in links]
        #: the penalized log-density is quadratic in u (a Gaussian mean with the identity
        #: link carries every random effect): one full Newton step lands on the modes
        fam = getattr(density, "family", None)
        mu_link = links.get("mu")
        self._quadratic = (getattr(fam, "name", "") == "gaussian"
                           and getattr(mu_link, "name", "") == "identity"
                           and self._re_names == ("mu",))
        self.q = self.structure.q
        #: the density can leave out derivatives outside the random-effects channels
        self._takes_focus = _takes_focus(type(density))
        self.hessian = make_hessian(self.structure) if self.q else None
        self.u_start = np.zeros(self.q)
        #: (x, u, jet, slot values, Lambdas) of the last solution, for predicted starts
        self._ref = None
        #: start each inner solve from the first-order prediction of the modes
        self.predict = True
        #: a full Newton step shorter than this is the last (:data:`INNER_STEP_FINAL`;
        #: a quasi-Newton search far from the optimum may loosen it: the modes are then
        #: ~its square from the exact ones, and the gradient off by about that times the
        #: curvature coupling u and the parameters)
        self.inner_step_final = INNER_STEP_FINAL
        #: the caller knows the gradient is rounded at the scale of the closing Hessian's
        #: forward differences (a Gaussian whose residual sd is held near zero, glmmTMB's
        #: ``dispformula = ~0``: the inner Hessian's condition ~1e8), so the Hessian is
        #: taken by central differences at once (:func:`~mixedmodels.fitting.laplace_fit.
        #: hessian_at` would find its forward columns asymmetric only after spending them)
        self.rounded_gradients = False
        self.n_evals = 0
        self.n_grads = 0
        self.n_newton = 0

    # -- parameters -> linear predictors ------------------------------------------------
    def theta(self, x: np.ndarray) -> np.ndarray:
        """Flat theta of all components with random effects (structure order)."""
        parts = [self.layout.get(x, b) for b in self._theta_blocks]
        return np.concatenate(parts) if parts else np.zeros(0)

    def fixed_eta(self, x: np.ndarray) -> np.ndarray:
        """``X_c beta_c + offset_c`` (and the family parameters) per channel: (n, m).

        The last two are remembered (a solve needs them at ``x`` and at the reference
        point of its predicted start, three products per evaluation otherwise), keyed by
        ``x`` and by the identity of the design list, so a view in another basis
        (:func:`~.basis.objective_in_basis`, which replaces the list) never sees them. A
        fresh array is returned each time."""
        key = (id(self._linear), np.ascontiguousarray(x, dtype=float).tobytes())
        memo = getattr(self, "_eta_memo", ())
        for k, eta in memo:
            if k == key:
                return eta.copy()
        eta = np.zeros((self.n, self.m))
        for j, X, off, block in self._linear:
            fixed = X.shape[1] and block in self.layout
            eta[:, j] = off + (X @ self.layout.get(x, block) if fixed else 0.0)
        for j, block in self._scalar:
            eta[:, j] = self.layout.get(x, block)[0]
        self._eta_memo = ((key, eta), *memo[:1])
        return eta.copy()

    def _valid(self, eta: np.ndarray) -> bool:
        """Every channel's linear predictor inside its link's domain (R's ``valideta``:
        ``eta > 0`` for the sqrt and inverse links, whose inverses would otherwise fold
        negative values onto positive means and create spurious optima)."""
        return all(lk.valid_eta(eta[:, j]) for j, lk in self._links)

    def _evaluate(self, eta: np.ndarray, order: int, wrt=None):
        etas = {c: eta[:, j] for j, c in enumerate(self.channels)}
        # third order is for the gradient, which reads only the derivatives with at most
        # one index outside the random-effects channels (d2[:, re, :], d3[:, re, re, :])
        if order == 3 and wrt is None and self.q and self._takes_focus:
            return self.density.evaluate(self.y, etas, weights=self.weights,
                                         size=self.size, order=3, focus=self._re_names)
        return self.density.evaluate(self.y, etas, weights=self.weights, size=self.size,
                                     order=order, wrt=wrt)

    def _curvature(self, jet, partial: bool) -> np.ndarray:
        """``W = -d^2 l / d eta d eta'`` over the random-effects channels, from a jet over
        those channels only (``partial``) or over all."""
        if partial:
            return -jet.d2
        re = self.re
        return -jet.d2[:, re][:, :, re]

    # -- conditional modes ---------------------------------------------------------------
    def _factor_at(self, a: np.ndarray, W: np.ndarray, clamp: bool) -> bool:
        if clamp:
            W = _psd(W)
        return factor_at(self.hessian, self.structure, a, W)

    def _jet_at(self, eta0, a, u, order: int, full: bool = False):
        """Linear predictors, the density's jet and ``f(u)`` at ``u``: over the
        random-effects channels only, or over every channel (``full``)."""
        eta = eta0.copy()
        if self.q:
            eta[:, self.re] += self.structure.eta(a, u)
        if not self._valid(eta):
            return eta, None, np.inf
        with np.errstate(all="ignore"):
            jet = self._evaluate(eta, order, wrt=None if full else self._re_names)
        f = -float(jet.v.sum()) + 0.5 * float(self._penalty @ (u * u))
        return eta, jet, (f if np.isfinite(f) else np.inf)

    def _re_derivatives(self, jet, full: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(d l / d eta, W)`` over the random-effects channels."""
        if full:
            return jet.d1[:, self.re], self._curvature(jet, partial=False)
        return jet.d1, -jet.d2

    def modes(self, x: np.ndarray, a: np.ndarray, u0: np.ndarray | None = None,
              final_order: int = 2, start_full: bool = False, chord: bool = False):
        """Conditional modes at ``x`` by damped Newton; returns ``(u, eta, jet, n_iter,
        full)``: the density's jet at the modes, over every channel to ``final_order``
        when ``full`` is True, else over the random-effects channels to order 2.

        Steps use the Hessian of ``f``; where it is not positive definite (densities that
        are not log-concave, far from the mode) the per-observation curvatures are made
        positive semi-definite for that step only. A step that does not lower ``f`` is
        halved. Each trial point is evaluated to second order, so an accepted point's
        derivatives serve the next step. The iteration stops after a full step shorter
        than :data:`INNER_STEP_DONE`: Newton's quadratic convergence leaves the modes
        within about its square of the exact ones. A full step shorter than
        :attr:`inner_step_final` (:data:`INNER_STEP_FINAL` unless a caller loosened it) is
        expected to be the last, so its point is evaluated
        over every channel to ``final_order`` at once (what the gradient needs), and so is
        the start when ``start_full`` (a predicted start, usually already the mode).

        With ``chord`` (``u0`` predicted from a reference within :data:`CHORD_DX` of
        ``x``, whose factor of ``H`` is still in the workspace) the first step is made
        with that factor instead of one at ``u0``: ``H`` differs by ~``CHORD_DX`` of
        itself, so the step is off by that fraction of its length (~1e-8 from such a
        start), ~1e-12 -- a factorization saved where most evaluations of a fit's
        closing Hessian need one step.

        Raises
        ------
        ModesError
            When step halving cannot lower ``f`` or the iteration limit is reached.
        """
        S = self.structure
        eta0 = self.fixed_eta(x)
        self._factored_at_modes = False
        u = (self.u_start if u0 is None else u0).copy()
        full = start_full and final_order > 2
        eta, jet, f = self._jet_at(eta0, a, u, final_order if full else 2, full)
        if not np.isfinite(f):
            u, full, chord = np.zeros(self.q), False, False
            eta, jet, f = self._jet_at(eta0, a, u, 2)
            if not np.isfinite(f):
                raise ModesError("the log-density is not finite at the starting values "
                                 "(zero random effects)")
        for it in range(1, INNER_MAXIT + 1):
            d1, W = self._re_derivatives(jet, full)
            g = self._penalty * u - S.scatter(a, d1)
            if chord and it == 1:
                exact = False                    # (the reference's factor: see above)
            else:
                exact = self._factor_at(a, W, clamp=False)
                if not exact and not self._factor_at(a, W, clamp=True):
                    raise ModesError("the Hessian of the penalized log-density is not "
                                     "positive definite")
            step = self.hessian.solve(g)
            size = float(np.abs(step).max()) if step.size else 0.0
            if size < INNER_TOL:
                if self._quadratic:
                    u, eta, jet = self._refine(eta0, a, u, eta, jet, final_order, full,
                                               (g, step))
                # the workspace holds the unclamped factor at the returned modes (for a
                # quadratic problem the factor does not depend on u): solve() need not
                # factor again
                self._factored_at_modes = exact
                return u, eta, jet, it, full
            # u is standard normal a priori: a longer step is far outside the model's
            # range and can cost a lot to evaluate (series densities at huge means).
            # REML's integrated fixed effects are on the user's scale (an intercept in
            # the thousands, the coefficient of a shifted predictor): they are not capped
            # (step halving still guards them)
            cap = size if self._all_penalized else \
                float(np.abs(step[self._penalized]).max(initial=0.0))
            t = min(1.0, INNER_MAX_STEP / cap) if cap > 0 else 1.0
            # a Gaussian density with the identity link: one full step is exact
            last = t == 1.0 and (size < self.inner_step_final or self._quadratic) \
                and final_order > 2
            for _ in range(INNER_MAX_HALVINGS):
                u_new = u - t * step
                eta_new, jet_new, f_new = self._jet_at(
                    eta0, a, u_new, final_order if last else 2, last)
                if f_new <= f + INNER_ROUNDING * max(1.0, abs(f)):
                    break
                t *= 0.5
                last = False
            else:
                raise ModesError("step halving failed to lower the penalized log-density "
                                 "of the random effects")
            self.n_newton += 1
            u, f, eta, jet, full = u_new, f_new, eta_new, jet_new, last
            if t == 1.0 and (size < (self.inner_step_final if last else INNER_STEP_DONE)
                             or self._quadratic):
                if self._quadratic:
                    u, eta, jet = self._refine(eta0, a, u, eta, jet, final_order, full)
                return u, eta, jet, it, full
        raise ModesError(f"the conditional modes did not converge in {INNER_MAXIT} "
                         "Newton iterations")

    def _refine(self, eta0, a, u, eta, jet, final_order: int, full: bool, g_step=None):
        """The modes of a quadratic inner problem after one more Newton step from the
        exact step's landing point, when the gradient there exceeds
        :data:`INNER_REFINE_GTOL` (iterative refinement, with the factor of ``H`` that
        made the step: ``W`` does not depend on ``u``). The step's rounding is ``eps
        cond(H)`` of its length; with a residual sd fixed near zero (glmmTMB's
        ``dispformula = ~0``: ``W ~ 7e7``) that leaves inner gradients ~1e-3 and, through
        ``W``, the fixed effects' gradient wrong by up to ~1 (BFGS then wanders in the
        noise); one refinement brings both to their rounding floor. ``g_step``: the
        gradient at ``u`` and its Newton step, where the caller has them."""
        if g_step is None:
            d1, _ = self._re_derivatives(jet, full)
            g = self._penalty * u - self.structure.scatter(a, d1)
            step = None
        else:
            g, step = g_step
        if not float(np.abs(g).max(initial=0.0)) > INNER_REFINE_GTOL:
            return u, eta, jet
        u_new = u - (self.hessian.solve(g) if step is None else step)
        eta_new, jet_new, f_new = self._jet_at(eta0, a, u_new, final_order if full else 2,
                                               full)
        if jet_new is None or not np.isfinite(f_new):
            return u, eta, jet
        return u_new, eta_new, jet_new

    def _predict_modes(self, x: np.ndarray, a: np.ndarray) -> np.ndarray | None:
        """First-order prediction of the modes at ``x`` from the last solution,
        ``u + du/dx (x - x_last)`` with ``du/dx = -H^{-1} d^2 f / du dx`` (the factor of
        ``H`` at the last modes is still in the workspace)."""
        ref = self._ref
        if ref is None:
            return None
        x_last, u, d1_re, d2_re, a_last, _ = ref
        dx = x - x_last
        if not dx.any():
            return u.copy()
        S, re = self.structure, self.re
        d_eta = self.fixed_eta(x) - self.fixed_eta(x_last)
        rhs = np.zeros(self.q)
        if S.terms and (self.theta(x) != self.theta(x_last)).any():
            # the slot values are linear in each Lambda_t (a = Z Lambda), so their change
            # is a - a_last (REML's integrated columns, X~ in both, cancel to zero)
            da = a - a_last
            d_eta[:, re] += S.eta(da, u)
            rhs += S.scatter(da, d1_re)
        # d2_re: (n, C, m) over all channels, or (n, C, C) over the random-effects ones
        # (then the effect of the other channels' changes on the modes is left out)
        d_use = d_eta if d2_re.shape[2] == self.m else d_eta[:, re]
        rhs += S.scatter(a_last, (d2_re @ d_use[:, :, None])[:, :, 0])
        return u + self.hessian.solve(rhs)

    def carry_reference(self, x_from: np.ndarray, x_to: np.ndarray) -> None:
        """Move the last solution's reference from ``x_from`` to ``x_to``, which differs
        only in covariance parameters giving the same covariances (the canonical form of a
        sign-symmetric term: columns of ``Lambda_t`` flipped), with the modes mapped so
        that the random effects ``b_t = Lambda_t u_t`` are unchanged: the next solve at
        ``x_to`` then starts at its modes (the first-order prediction across a flip is
        far off: six Newton iterations instead of one on Salamanders ZIP). Does nothing
        unless the reference is at ``x_from`` and every changed ``Lambda_t`` is
        invertible."""
        ref = self._ref
        if ref is None or not self.q or not np.array_equal(ref[0], x_from):
            return
        _, u, d1_re, d2_re, _, lams = ref
        S = self.structure
        lams_new = S.lambdas(self.theta(np.asarray(x_to, dtype=float)))
        u_new = u.copy()
        for ts, lam, lam_new in zip(S.terms, lams, lams_new, strict=True):
            if np.array_equal(lam, lam_new):
                continue
            t = ts.term
            try:
                # U_new Lambda_new' = U Lambda'  (levels x p)
                M = np.linalg.solve(lam_new, lam).T
            except np.linalg.LinAlgError:
                return
            block = slice(ts.u_offset, ts.u_offset + t.q)
            u_new[block] = (u[block].reshape(t.nlevels, t.p) @ M).ravel()
        self._ref = (np.array(x_to, dtype=float), u_new, d1_re, d2_re,
                     S.slot_values(lams_new), lams_new)

    # -- objective and gradient ----------------------------------------------------------
    def solve(self, x, order: int = 2, full: bool = False
              ) -> tuple[LaplaceSolution, object, np.ndarray]:
        """Modes, ``F`` and the density's jet at the modes (order 3 for the gradient).

        With random effects and ``order <= 2`` the jet is over the random-effects channels
        only unless ``full=True``."""
        x = np.asarray(x, dtype=float)
        S = self.structure
        theta = self.theta(x)
        lams = S.lambdas(theta) if self.q else []
        a = S.slot_values(lams) if self.q else np.zeros((self.n, 0))
        if self.q:
            u0 = self._predict_modes(x, a) if self.predict else None
            dx = float(np.abs(x - self._ref[0]).max()) if u0 is not None else np.inf
            near = dx < PREDICT_FULL_DX
            final = max(order, 2) if (order > 2 or full) else 2
            self._ref = None          # the workspace's factor is about to change
            try:
                u, eta, jet, n_iter, got_full = self.modes(
                    x, a, u0, final, near, chord=dx < CHORD_DX and not self._quadratic)
            except ModesError:
                if u0 is None:
                    raise
                # from the last modes
                u, eta, jet, n_iter, got_full = self.modes(x, a, None, final)
            partial = not (order > 2 or full)
            if not partial and not got_full:
                with np.errstate(all="ignore"):
                    jet = self._evaluate(eta, max(order, 2))
        else:
            u, eta, n_iter = np.zeros(0), self.fixed_eta(x), 0
            if not self._valid(eta):
                raise ModesError("a linear predictor is outside its link's domain")
            with np.errstate(all="ignore"):
                jet = self._evaluate(eta, order)
        logdet = 0.0
        if self.q:
            if not (self._factored_at_modes and got_full == (not partial)) and \
                    not self._factor_at(a, self._curvature(jet, partial), clamp=False):
                raise ModesError("the Hessian of the penalized log-density is not positive "
                                 "definite at the conditional modes")
            logdet = self.hessian.logdet
            self.u_start = u
            if partial:
                d1_re, d2_re = jet.d1, jet.d2
            else:
                d1_re, d2_re = jet.d1[:, self.re], jet.d2[:, self.re, :]
            self._ref = (x.copy(), u, d1_re, d2_re, a, lams)
        value = (-2.0 * float(jet.v.sum()) + float(self._penalty @ (u * u)) + logdet
                 + self._reml_const)
        b = S.b_from_u(lams, u) if self.q else []
        inner_beta = S.int_T @ u[S.q_u:] if S.X_int is not None else u[S.q_u:]
        sol = LaplaceSolution(x, value, u, b, eta, logdet, jet.v, n_iter, inner_beta)
        return sol, jet, a

    def __call__(self, x) -> float:
        """``F(x)`` (inf where the modes cannot be found)."""
        self.n_evals += 1
        try:
            sol, _, _ = self.solve(x, order=0 if not self.q else 2)
        except (ModesError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf
        return sol.objective if np.isfinite(sol.objective) else np.inf

    def value_and_gradient(self, x) -> tuple[float, np.ndarray]:
        """``F(x)`` and ``dF/dx`` (the full layout vector; see the module docstring)."""
        self.n_evals += 1
        self.n_grads += 1
        x = np.asarray(x, dtype=float)
        try:
            # without random effects F has no log-determinant: first derivatives suffice
            sol, jet, a = self.solve(x, order=3 if self.q else 1)
        except (ModesError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf, np.full(x.shape, np.nan)
        if not np.isfinite(sol.objective):
            return np.inf, np.full(x.shape, np.nan)
        return sol.objective, self._gradient(x, sol, jet, a)

    def value_gradient_hessian(self, x) -> tuple[float, np.ndarray, np.ndarray | None]:
        """``F(x)``, ``dF/dx`` and :meth:`fixed_hessian` from one second-order evaluation
        of the density (a model without random effects, where that Hessian is exact:
        Newton's method needs all three at every iterate). ``(inf, nan, None)`` where
        ``F`` is not finite."""
        if self.q:
            raise ValueError("value_gradient_hessian is for a model without random effects")
        self.n_evals += 1
        self.n_grads += 1
        x = np.asarray(x, dtype=float)
        try:
            sol, jet, a = self.solve(x, order=2)
        except (ModesError, np.linalg.LinAlgError, FloatingPointError):
            return np.inf, np.full(x.shape, np.nan), None
        if not np.isfinite(sol.objective):
            return np.inf, np.full(x.shape, np.nan), None
        return sol.objective, self._gradient(x, sol, jet, a), self.fixed_hessian(x, jet)

    def fixed_hessian(self, x, jet=None) -> np.ndarray:
        """Hessian of ``-2 sum_i l_i`` in the fixed effects and family parameters at fixed
        random effects (the last modes): ``-2 J' l'' J`` with ``J`` the map of parameters to
        channels. Exact for a model without random effects; otherwise a preconditioner.
        Entries for the covariance parameters are zero."""
        x = np.asarray(x, dtype=float)
        if jet is None:
            if self.q:
                _, jet, _ = self.solve(x, order=2, full=True)
            else:
                with np.errstate(all="ignore"):
                    jet = self._evaluate(self.fixed_eta(x), 2)
        d2 = jet.d2
        blocks = [(j, X, self.layout.slice(b)) for j, X, _, b in self._linear
                  if b in self.layout and X.shape[1]]
        blocks += [(j, np.ones((self.n, 1)), self.layout.slice(b)) for j, b in self._scalar]
        H = np.zeros((self.layout.size, self.layout.size))
        for ja, Xa, sa in blocks:
            for jb, Xb, sb in blocks:
                H[sa, sb] = -2.0 * (Xa * d2[:, ja, jb][:, None]).T @ Xb
        return H

    def marginal_fixed_hessian(self, x) -> np.ndarray:
        r"""Gauss-Newton approximation of the Hessian of ``F`` in the fixed effects and
        family parameters: that of ``2 f(\hat u(x), x)`` with the modes following the
        parameters,

        .. math:: 2\,(f_{xx} - f_{xu} H^{-1} f_{ux}), \qquad
            f_{u x_j} = A' (W_{\cdot c_j} x_j)

        (``x_j`` the column of parameter ``j`` in channel ``c_j``, ``W = -l''``), leaving
        out the derivatives of ``log det H``; positive semi-definite where the penalized
        log-density is jointly concave. A preconditioner for the quasi-Newton method: the
        random effects absorb much of the curvature that :meth:`fixed_hessian` sees in
        the fixed effects of their channels. Entries for the covariance parameters are
        zero."""
        x = np.asarray(x, dtype=float)
        if not self.q:
            return self.fixed_hessian(x)
        _, jet, a = self.solve(x, order=2, full=True)
        H = self.fixed_hessian(x, jet)
        d2 = jet.d2
        S, re = self.structure, self.re
        cols, index = [], []
        blocks = [(j, X, self.layout.slice(b)) for j, X, _, b in self._linear
                  if b in self.layout and X.shape[1]]
        blocks += [(j, np.ones((self.n, 1)), self.layout.slice(b)) for j, b in self._scalar]
        for j, X, sl in blocks:
            w = -d2[:, re, j]                                        # (n, C)
            for col, pos in enumerate(range(sl.start, sl.stop)):
                cols.append(S.scatter(a, w * X[:, col:col + 1]))
                index.append(pos)
        if cols:
            G = np.column_stack(cols)                               # f_ux: (q, k)
            HG = np.column_stack([self.hessian.solve(G[:, i]) for i in range(G.shape[1])])
            idx = np.array(index)
            H[np.ix_(idx, idx)] -= 2.0 * (G.T @ HG)
        return H

    def _gradient(self, x, sol: LaplaceSolution, jet, a) -> np.ndarray:
        S, re = self.structure, self.re
        d1, d2 = jet.d1, jet.d2
        gamma = -2.0 * d1
        grad = np.zeros(self.layout.size)
        if self.q:
            Sblk = slot_quadratics(self.hessian, S, a)               # (n, C, C)
            n, C = Sblk.shape[:2]
            if C == 1:
                # one random-effects channel: the per-observation products are scalars
                # times rows (a batched matmul of n 1 x 1 matrices costs 4x more)
                k0 = re[0]
                r = -Sblk[:, 0, 0, None] * jet.d3[:, k0, k0, :]        # (n, m)
                z = self.hessian.solve(S.scatter(a, r[:, re]))
                Az = S.apply(a, z)                                   # (n, 1)
                gamma += r + Az * d2[:, k0, :]
            else:
                T = -jet.d3[:, re][:, :, re, :]                      # (n, C, C, m)
                r = (Sblk.reshape(n, 1, C * C) @ T.reshape(n, C * C, self.m))[:, 0, :]
                z = self.hessian.solve(S.scatter(a, r[:, re]))
                Az = S.apply(a, z)                                   # (n, C)
                gamma += r + (Az[:, None, :] @ d2[:, re, :])[:, 0, :]
            u = sol.u
            BAW = None
            for ts in S.terms:
                t, k = ts.term, ts.channel
                kk = re[k]
                theta_t = self.layout.get(x, self._theta_block_of(ts))[self._local_theta(ts)]
                if not theta_t.size:
                    continue
                u_lev = u[ts.u_offset:ts.u_offset + t.q].reshape(t.nlevels, t.p)
                z_lev = z[ts.u_offset:ts.u_offset + t.q].reshape(t.nlevels, t.p)
                lev = t.grouping.codes
                lam = t.structure.lambda_(theta_t)
                # (a structure's closed form needs no dLambda: dLambda_j = Lambda M_j)
                rel = t.structure.relative_jacobian(theta_t)
                dlam = None
                if rel is None:
                    dlam = t.structure.lambda_jacobian(theta_t)
                    rel = _relative_jacobian(lam, dlam)
                if rel is not None:
                    grad[self.theta_index(ts)] = self._relative_theta_gradient(
                        ts, rel, lam, u_lev, z_lev, gamma[:, kk] + 2.0 * d1[:, kk])
                    continue
                if BAW is None:
                    # [B_i A_i' W_i]_{s, k}: (n, P, C)
                    BAW = slot_weighted_inverse(self.hessian, S, a, -d2[:, re][:, :, re])
                V = (gamma[:, kk, None] * u_lev[lev] + d1[:, kk, None] * z_lev[lev]
                     + 2.0 * BAW[:, ts.slots, k])
                K = t.Z.T @ V                                         # (p, p): [b, a]
                g_t = dlam.reshape(dlam.shape[0], t.p * t.p) @ K.ravel()
                grad[self.theta_index(ts)] = g_t
        for j, X, _, block in self._linear:
            if block in self.layout and X.shape[1]:
                grad[self.layout.slice(block)] = X.T @ gamma[:, j]
        for j, block in self._scalar:
            grad[self.layout.slice(block)] = float(np.sum(gamma[:, j]))
        return grad

    def _relative_theta_gradient(self, ts, rel, lam, u_lev, z_lev, gamma_rest):
        r"""The covariance-parameter gradient of one term whose ``dLambda_j = Lambda M_j``
        (:func:`_relative_jacobian`), in a form that never multiplies ``H^{-1}`` by the
        curvature ``W``.

        With ``D_j = Z dLambda_j = A M_j`` (``M_j`` acting on the term's effects level by
        level) and the mode's stationarity ``A' l' = \hat u``, the gradient's pieces
        become sums over levels:

        .. math::

            -2\,l'' D_j \hat u = -2 \sum_\ell \hat u_\ell' M_j \hat u_\ell, \qquad
            l'' D_j z = \sum_\ell \hat u_\ell' M_j z_\ell, \qquad
            \operatorname{tr}(H^{-1} \partial_j H) = 2\operatorname{tr}(H^{-1}A'WA M_j)
                = 2 \sum_\ell \operatorname{tr}\big((I - [H^{-1}]_{\ell\ell}) M_j\big),

        the last since ``H = I + A'WA`` on the term's effects. The direct form
        ``2 <[H^{-1} A' W]_i, D_{j,i}>`` loses ``eps cond(H) max W`` to rounding: with a
        dispersion fixed near zero (glmmTMB's ``dispformula = ~0``, ``W = 1/sigma^2 ~
        7e7``) that is ~0.1 deviance units per unit of theta, where this form keeps the
        rounding of ``H^{-1}`` itself (~1e-8). What is left of ``gamma`` besides
        ``-2 l'`` (the third-derivative terms, zero for a Gaussian mean) goes through the
        observations as before, as ``<dLambda_j, K> = <M_j, Lambda' K>`` with ``K =
        Z'(gamma u_lev)`` (no ``dLambda`` needed).
        """
        t = ts.term
        lev = t.grouping.codes
        Binv = self.hessian.term_inverse(ts)                               # (levels, p, p)
        # sum_l (I - B_l): the part of H^{-1} A'WA on the term's diagonal blocks
        C = t.nlevels * np.eye(t.p) - Binv.sum(axis=0)
        Suu = u_lev.T @ u_lev                                              # [a, b]
        Suz = u_lev.T @ z_lev
        # (three contractions, not one of their sum: with a dispersion fixed near zero
        # the parts are large and cancel, and their rounding is what the search sees)
        g = (-2.0 * np.einsum("ab,jab->j", Suu, rel)
             + np.einsum("ab,jab->j", Suz, rel)
             + 2.0 * np.einsum("ba,jab->j", C, rel))
        if gamma_rest.any():
            K = t.Z.T @ (gamma_rest[:, None] * u_lev[lev])                 # (p, p): [b, a]
            g += np.einsum("ab,jab->j", lam.T @ K, rel)
        return g

    # -- theta bookkeeping per term -----------------------------------------------------
    def _theta_block_of(self, ts) -> str:
        return f"theta.{ts.component}"

    def _local_theta(self, ts) -> slice:
        """The term's entries within its component's theta block."""
        start = sum(o.term.structure.n_theta for o in self.structure.terms
                    if o.component == ts.component and o.u_offset < ts.u_offset)
        return slice(start, start + ts.term.structure.n_theta)

    def theta_index(self, ts) -> slice:
        sl = self.layout.slice(self._theta_block_of(ts))
        loc = self._local_theta(ts)
        return slice(sl.start + loc.start, sl.start + loc.stop)


@functools.cache
def _takes_focus(density_type: type) -> bool:
    """Whether a density class's ``evaluate`` takes ``focus=`` (read once per class: the
    signature costs ~0.15 ms, and a glmmtmb fit makes two objectives)."""
    return "focus" in inspect.signature(density_type.evaluate).parameters


def _relative_jacobian(lam: np.ndarray, dlam: np.ndarray) -> np.ndarray | None:
    """``M_j = Lambda^{-1} dLambda_j`` (k, p, p) when ``Lambda`` is square and well
    conditioned (:data:`RELATIVE_COND_MAX`), else None (reduced-rank and singular terms,
    known matrices of deficient rank: the direct form of the gradient serves them)."""
    if lam.shape[0] != lam.shape[1] or not lam.size:
        return None
    if lam.shape == (1, 1):
        # a scalar term (a random intercept): M = dLambda / Lambda, no SVD or solve
        return dlam / lam[0, 0] if lam[0, 0] != 0.0 else None
    sv = np.linalg.svd(lam, compute_uv=False)
    if not sv[0] > 0.0 or sv[-1] < RELATIVE_COND_MAX ** -1 * sv[0]:
        return None
    p = lam.shape[0]
    rhs = np.moveaxis(dlam, 0, 1).reshape(p, -1)                   # [b, (j, a)]
    M = np.linalg.solve(lam, rhs).reshape(p, dlam.shape[0], p)
    return np.moveaxis(M, 1, 0)


def _psd(W: np.ndarray) -> np.ndarray:
    """Per-observation curvature matrices made positive semi-definite (eigenvalues clipped
    at :data:`MIN_CURVATURE`; the scalar case is a clip)."""
    if W.shape[1] == 1:
        return np.maximum(W, MIN_CURVATURE)
    vals, vecs = np.linalg.eigh(W)
    vals = np.maximum(vals, MIN_CURVATURE)
    return np.einsum("nij,nj,nkj->nik", vecs, vals, vecs)
