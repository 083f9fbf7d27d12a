"""Vectorized symbolic regression (VSR): discover the formula every input variable shares.

    from taskneurons.vsr import VSR
    model = VSR(bases="poly", scale="shared").fit(X, y)
    model.formula_          # in the scaled inputs; model.formula_raw_ in raw units

Modules: :mod:`.grammar` (term families), :mod:`.scaling` (input maps), :mod:`.features`
(aggregated features in row blocks, Gram caches), :mod:`.fit` (exact least squares),
:mod:`.search` (enumeration, beam search, constant refinement), :mod:`.selection` (front and
parsimony rule), :mod:`.estimator` (the scikit-learn estimator), :mod:`.synthetic` (tasks with
known terms).
"""

from __future__ import annotations

from .estimator import VSR
from .grammar import FAMILIES
from .scaling import AffineScaler
from .synthetic import make_vsr_task, terms_match

__all__ = ["VSR", "FAMILIES", "AffineScaler", "make_vsr_task", "terms_match"]
