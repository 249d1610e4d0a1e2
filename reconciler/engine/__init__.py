"""One reconciliation pass, as a straight sequence of phases (:mod:`reconciler.engine.run`).

Each phase is a module with one ``async`` function that returns its result to continue with, or
a :class:`reconciler.decisions.Halt` saying what comes next; :mod:`~reconciler.engine.run` reads
the sequence top to bottom.
"""

from reconciler.engine.context import PassContext, Ports
from reconciler.engine.run import MUTATING, run_pass

__all__ = ["MUTATING", "PassContext", "Ports", "run_pass"]
