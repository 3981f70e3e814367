"""How to take a step: Butcher tableaus, batched explicit RK (eager or compiled), ETDRK4."""

from partime.integrators.etdrk4 import ETDRK4
from partime.integrators.explicit import integrate
from partime.integrators.step import rk_step
from partime.integrators.tableaus import TABLEAUS, ButcherTableau, get_tableau

__all__ = ["ETDRK4", "TABLEAUS", "ButcherTableau", "get_tableau", "integrate", "rk_step"]
