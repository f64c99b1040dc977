"""senforms: the paperwork of SEN support in English schools, as a pipeline.

A form moves through the modules in this order: ``intake`` (the watched folder), ``read``
(Word or PDF to raw answers), ``validate`` (answers to a model), ``archive`` (the pupil's
record), ``rules`` (what the graduated approach says comes next), ``render`` (letters and
pre-filled forms) and ``deliver`` (the outbox). ``pipeline`` runs them in that order.
"""

__version__ = "0.1.0"
