"""Bulk inference: survey files -> one streaming Ray Data pipeline -> a Parquet catalogue.

::

    files --plan--> shards --[read + normalise: CPU tasks]--> canonical rows
          --[model actors: render/window + model + heads]--> catalogue rows | failures
          --[write parts: CPU tasks]--> OUT/_staging/<run>/<shard>/
          --driver--> OUT/catalogue/shard=<id>/ + OUT/errors/shard=<id>/ + _state/done/<id>.json

Exactly once, by input object, whatever changed between runs
-------------------------------------------------------------

The unit of work, of resumption and of atomic publication is the *shard*: a group of read
units (input files read together). A shard is named by its *content*: a digest of its own
units' fingerprints (reader, kind, sorted paths with size and mtime, and the same for the
label tables joined to them), never by its position among the inputs. Its record,
``_state/done/<id>.json``, is the commit point of its publication and the run manifest of what
it covers: the fingerprints of its units, its row counts and the model hash. A run:

1. plans the inputs into read units and fingerprints them (one ``stat`` per file);
2. keeps every published shard whose units are all still planned with the same fingerprints:
   its files are finished and skipped;
3. *retires* every other published shard (a file of it was removed, modified, renamed, or
   re-grouped by its reader): record deleted first, then its folders, so that its rows are
   never counted twice nor left published without a record;
4. groups the units no kept shard covers (new files, and the surviving files of retired
   shards) into new shards of about ``files_per_shard`` files, in path order.

Grouping only what no kept shard covers (rather than re-cutting all inputs by position or by
hash buckets) keeps a published shard valid as long as its own files are untouched, whatever
is added or removed elsewhere; re-runs process only new or changed files (and the siblings of
removed ones); and shards stay about ``files_per_shard`` files however the inputs grow (hash
buckets of a fixed count would grow without bound). A modified file is noticed by its size or
mtime (as ``make`` and ``rsync`` do; contents are not hashed, which would mean reading every
input on every run). Renaming a folder changes every ``source``, so its shards are redone.
A label table edited beside the data retires the shards it labels (their ``label`` column
would be stale otherwise).

A read task records how many objects its shard holds (``read.json`` in its staging folder)
and writes the records it could not read to the shard's errors. Writer tasks write catalogue
and error parts under deterministic names (a digest of the rows' ids), so a retried task
overwrites rather than duplicates. Staging folders are per run (``_staging/<run>/``), so that
a task of a killed run still writing cannot slip parts into a later run's shard. When every
object of a shard is accounted for (and the staged parts hold exactly that many rows), the
driver moves its parts into ``catalogue/shard=<id>/`` and ``errors/shard=<id>/`` (directory
renames: atomic on local and POSIX filesystems), then writes the record. A restarted run
deletes any ``shard=`` folder without a record (the leftovers of a kill), and
:func:`read_catalogue` reads only recorded shards. Files starting with ``_`` or ``.`` are
invisible to Parquet readers. A lock (``_state/lock``) refuses two runs on one folder at once.

``_state/manifest.json`` says which model and options made the catalogue. Changed *inputs*
are a normal incremental re-run. A changed *model* (another content hash) or ``embedding``
setting is refused once the folder holds a published shard, since one catalogue holds one
model's rows; ``restart=True`` discards the folder's catalogue first. The weights are checked
before anything is written, and a folder with nothing published takes any model, so a model
repaired after a failed run is accepted.

Duplicate object ids
--------------------

Rows are keyed by input: one row per object read from an input file, so that every input id
ends up once in the catalogue or the errors. An object whose ``(survey, object_id)`` comes
from two inputs (the same star in two files, two spectra of one galaxy, an alert and its
stamp) has two rows: they are different inputs, whose data may differ, and neither is dropped
nor demoted to an error, which would depend on which file is read first and change when files
are added. They are detected over the whole published catalogue at the end of every run,
counted in the summary line and ``results.json`` (``duplicate_ids``: objects with 2+ rows;
``duplicate_rows``: rows beyond the first of each) and listed in ``OUT/duplicates.parquet``
(``survey``, ``object_id``, ``n_rows``, ``sources``), so that a user can choose one row per
object. A file that repeats a record is treated alike (its two rows are listed with the same
source twice): telling it apart from two inputs would need the input file of every row, which
canonical Parquet rows do not carry (their ``source`` is the provenance, often null), and a rule
that depended on how files fall into shards would change between runs.

Model outputs that are not finite (a probability, redshift or score of NaN or inf, which
inputs beyond float32 after centring produce) are failures naming the reason, never rows.
"""

from astroray.infer.catalogue.config import InferConfig, InferSummary
from astroray.infer.catalogue.driver import ensure_model, run_inference, run_job
from astroray.infer.catalogue.shards import read_catalogue
from astroray.infer.catalogue.stages import CARRIED, PredictBatch, ReadShard, WriteParts

__all__ = ["CARRIED", "InferConfig", "InferSummary", "PredictBatch", "ReadShard", "WriteParts",
           "ensure_model", "read_catalogue", "run_inference", "run_job"]
