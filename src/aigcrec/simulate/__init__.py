"""aigcrec.simulate: an online A/B on a world through the real HTTP service (``aigcrec simulate``).

- ``scenario``: what the world gives a simulation: the true click model, the sessions users re-enact, the
  held-out items of the AIGC flood and the catalog folder the service starts from.
- ``policies``: random, popularity, affect_blind, affect_mmei, affect_oracle and ceiling.
- ``server``: the real service on a loopback port (uvicorn in a thread, or ``aigcrec serve`` in a process).
- ``runner``: one policy and seed end to end; every policy over every seed.
- ``report``: means and 95 % intervals over seeds, curves, ``simulate.json``, Markdown and HTML.
"""
