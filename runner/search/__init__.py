"""``runner search``: an Optuna study over a spec's ``search:`` block, tracked in MLflow.

One module per job: ``space`` samples, ``storage`` opens where the study lives (``journal``
gives a journal file heartbeats), ``study`` builds samplers and pruners, ``objective`` runs
one trial, ``worker`` loops over trials, ``best`` writes the winner, ``view`` shows the
table. Only this package imports optuna.
"""

#: The ``specrun.error`` of a trial's run whose worker died (its tracking process ends it).
TRIAL_ABANDONED = "the search worker ended without ending this trial's run (it was killed: SIGKILL, the OOM killer?)"
