"""The one formulaic materializer every model matrix of this package is built with.

formulaic's pandas materializer with three changes, all about how a name is resolved:

* **Contrasts by column** (lme4's ``contrasts = list(x = "contr.sum")``): a categorical
  column named in ``contrasts`` is encoded with the given formulaic ``Contrasts`` wherever it
  appears bare (``x``, ``x:z``); an explicit ``C(x, ...)`` keeps its own contrasts, as in R.
* **Ordered categoricals** get polynomial contrasts (R's default ``contr.poly`` for ordered
  factors) unless ``contrasts`` says otherwise.
* **Booleans are factors** with levels False, True, as R's logicals in a model matrix
  (``bTRUE``; with no intercept both ``bFALSE`` and ``bTRUE``); formulaic alone would use
  them as 0/1 numbers.
* **Column names may repeat**: a data column named ``Intercept`` next to formulaic's
  intercept gives two columns of that name (formulaic's pandas output would merge them into
  one, silently); the design layer then tells them apart.
* **Functions are not shadowed by columns**: formulaic looks names up in the data first, so a
  column named ``I`` or ``np`` would replace ``I()`` or ``np.log()``. Names a Python term only
  *calls* are resolved as functions, as R resolves them.

The materializer is registered under :data:`MATERIALIZER`; formulaic records that name in each
model spec, so new data is encoded the same way (and specs pickle).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pandas as pd
from formulaic.materializers import PandasMaterializer
from formulaic.transforms import TRANSFORMS
from formulaic.transforms.contrasts import C, PolyContrasts
from formulaic.utils.layered_mapping import LayeredMapping
from formulaic.utils.stateful_transforms import stateful_eval
from interface_meta import override

__all__ = ["MATERIALIZER", "ModelMaterializer", "build_matrix", "transform_names"]

#: Name under which :class:`ModelMaterializer` is registered with formulaic.
MATERIALIZER = "mixedmodels"


@cache
def transform_names() -> frozenset[str]:
    """Names formulaic provides in every formula (``np``, ``log``, ``C``, ``Sum``, ...)."""
    return frozenset(TRANSFORMS)


class ModelMaterializer(PandasMaterializer):
    """formulaic's pandas materializer with per-column contrasts, R's polynomial contrasts
    for ordered categoricals and functions that columns cannot shadow (module docstring).

    Parameters (``materializer_params``)
    ------------------------------------
    contrasts : dict, optional
        Column name -> formulaic ``Contrasts`` instance.
    """

    REGISTER_NAME = MATERIALIZER
    REGISTER_INPUTS = ()  # never chosen automatically: only where this package names it
    REGISTER_OUTPUTS = ("pandas", "numpy", "sparse")

    @override
    def _lookup(self, name: str) -> tuple[Any, set]:
        values, variables = super()._lookup(name)
        contrasts = (self.params.get("contrasts") or {}).get(name)
        dtype = getattr(values, "dtype", None)
        if contrasts is None and isinstance(dtype, pd.CategoricalDtype) and dtype.ordered:
            contrasts = PolyContrasts()
        if contrasts is not None:
            values = C(values, contrasts)
        elif dtype is not None and pd.api.types.is_bool_dtype(dtype):
            values = C(values, levels=[False, True])
        return values, variables

    @override
    def _combine_columns(self, cols, spec, drop_rows):
        names = [name for name, _ in cols]
        if spec.output != "pandas" or len(set(names)) == len(names):
            return super()._combine_columns(cols, spec, drop_rows)
        frame = super()._combine_columns([(str(j), values) for j, (_, values) in
                                          enumerate(cols)], spec, drop_rows)
        frame.columns = names
        return frame

    @override
    def _evaluate(self, expr: str, metadata: Any, spec) -> tuple[Any, set]:
        from .variables import called_names

        shadowed = {n for n in called_names(expr) if n in self.data_context}
        if not shadowed:
            return super()._evaluate(expr, metadata, spec)
        functions = {n: self.context[n] if n in self.context else TRANSFORMS[n]
                     for n in shadowed if n in self.context or n in TRANSFORMS}
        variables: set = set()
        env = LayeredMapping(functions, self.layered_context)
        value = stateful_eval(expr, env, {expr: metadata}, spec.transform_state, spec,
                              variables=variables)
        return value, variables


def build_matrix(formula, frame: pd.DataFrame, contrasts: dict | None = None):
    """formulaic model matrix of ``formula`` on ``frame`` with :class:`ModelMaterializer`.

    Missing values are kept (``na_action="ignore"``): the design layer drops and reports the
    rows. No caller namespace is captured (formulaic's default would expose this module's
    local variables to the formula).
    """
    from formulaic import model_matrix

    return model_matrix(formula, frame, context={}, na_action="ignore",
                        materializer=MATERIALIZER,
                        materializer_params={"contrasts": dict(contrasts)} if contrasts
                        else None)
