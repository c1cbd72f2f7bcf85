"""The HTTP routes, one module per group; each is an ``APIRouter`` using ``base.GuardedRoute``."""

from aigcrec.service.routes import feedback, items, ops, recommend

ROUTERS = (recommend.router, items.router, feedback.router, ops.router)
