"""aigcrec.retrieval: the two-tower candidate model (user tower over live history, user features and affect
context; item tower over e_SEM, e_STY, e_TSEM and the item id), trained with in-batch sampled softmax and
logQ correction. The service indexes its item vectors and queries with the user tower (docs/retrieval.md).
"""
