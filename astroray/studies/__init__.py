"""Research studies: the experiment protocols behind the jobs' tables.

One module per protocol, each with its config, its ``run``-style entry point and the writing of
its results; the jobs in ``jobs/`` and the CLI call them. A study builds on the library
(``data``, ``models``, ``train``, ``infer``, ``uncertainty``, ``eval``, ``ot``, ``debias``) and
nothing in the library imports a study.

* :mod:`astroray.studies.few_shot`: few-shot classification on Astromer embeddings against
  baselines (``jobs/classify_astromer.py``);
* :mod:`astroray.studies.uncertainty` and its sweep :mod:`astroray.studies.tune_uncertainty`:
  MC Dropout, HSA, HA-MC Dropout and deep ensembles compared (``jobs/train_uncertainty.py``,
  ``jobs/tune_uncertainty.py``);
* :mod:`astroray.studies.domain` and its sweep :mod:`astroray.studies.tune_domain`: real/bogus
  domain adaptation by fine-tuning and MME (``jobs/domain_adapt.py``, ``jobs/tune_domain.py``);
* :mod:`astroray.studies.anomaly`: the MCDSVDD anomaly protocol (``jobs/anomaly.py``);
* :mod:`astroray.studies.ot_timeseries`: the optimal-transport spectral time series evaluation
  (``jobs/ot_timeseries.py``);
* :mod:`astroray.studies.debias`: label de-biasing of galaxy morphologies (``jobs/debias.py``).

The package imports none of them, so that importing one study does not load the others.
"""
