"""Synthetic surveys: seeded, vectorised generators of canonical tables, and survey writers.

Each generator returns a :mod:`pyarrow` table in the canonical schema of
:mod:`astroray.data.schema`, realistic enough to train and test the methods of the design
notes when no real release is at hand; one module per generator:

* :func:`periodic_variables` (:mod:`.periodic`): MACHO/OGLE/ATLAS-like light curves of
  Cepheids (fundamental and first overtone), RR Lyrae (ab and c), eclipsing binaries and
  long-period variables, with survey cadences (seasons, nightly jitter, band drop-outs) and
  magnitude-dependent errors;
* :func:`transients` (:mod:`.transient`): multi-band SN Ia / II / Ibc light curves in nJy at
  cosmological distances;
* :func:`spectra` (:mod:`.spectrum`): SDSS-like STAR / GALAXY / QSO spectra with lines, sky and
  masks;
* :func:`stamps` (:mod:`.stamp`): real/bogus science, reference and difference cutouts from
  two surveys whose PSF, pixel scale, stamp size and noise differ (a domain shift);
* :func:`sn_spectral_series` (:mod:`.sn_series`): dense, noiseless supernova spectral time
  series (truth series).

:func:`make_survey` (:mod:`.survey`) generates a kind in chunks and writes it in a real survey
format, so that a synthetic catalogue is ingested exactly like a real one;
:func:`generate_survey` does so once into a folder (finished by the marker :data:`DONE`). The
same ``seed`` (and ``start``) always gives the same table.

Labels are the canonical class names of :mod:`astroray.data.taxonomy` (``DCEP_F``, ``RRab``,
``SNIa``, ``GALAXY``, ``real``), written to ``label`` and ``label_raw`` alike: the generator is
the source, and it spells its classes canonically.
"""

from astroray.data.synthetic.periodic import PERIODIC_CLASSES, periodic_variables
from astroray.data.synthetic.sn_series import sn_spectral_series
from astroray.data.synthetic.spectrum import SPECTRUM_CLASSES, spectra
from astroray.data.synthetic.stamp import STAMP_SURVEYS, stamps
from astroray.data.synthetic.survey import (
    DONE,
    SURVEY_FORMATS,
    SyntheticSurveyConfig,
    generate_survey,
    make_survey,
)
from astroray.data.synthetic.transient import TRANSIENT_CLASSES, transients

__all__ = [
    "DONE",
    "PERIODIC_CLASSES",
    "SPECTRUM_CLASSES",
    "STAMP_SURVEYS",
    "SURVEY_FORMATS",
    "SyntheticSurveyConfig",
    "TRANSIENT_CLASSES",
    "generate_survey",
    "make_survey",
    "periodic_variables",
    "sn_spectral_series",
    "spectra",
    "stamps",
    "transients",
]
