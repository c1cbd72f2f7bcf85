"""Top-K quality over the whole catalog (``aigcrec benchmark topk``): protocol, evaluation, models, runner.

- ``protocol``: the per-user temporal split of the positives, the cold-item split, the masks.
- ``evaluate``: Recall@K, NDCG@K, MRR@20 and catalog coverage@10 of ranked lists.
- ``peers``: Cornac BPR / VBPR, implicit ALS / BPR / item-kNN, EASE (our closed form), popularity.
- ``ours``: the three aigcrec rows (served pipeline, retrieval alone, the ranker over every item).
- ``runner``: seeds, validation grids, timing, ``topk.json`` and ``topk.md``.
"""
