"""Classic collaborative filtering on explicit ratings.

One module per family: ``baseline`` (mu + b_u + b_i), ``knn`` (user- and
item-based neighbourhoods), ``factor`` (SVD, SVD++, timeSVD++), ``rbm``
(conditional RBM of Salakhutdinov, Mnih and Hinton 2007), and ``serving``
(the session-model form the service runs). These modules hold parameters and
prediction only; fitting loops live in ``training.cf``.
"""
