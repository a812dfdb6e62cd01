"""Fitting and evaluating the classic CF models of ``models.cf`` on rating folds."""
