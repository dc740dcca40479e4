"""Annotation replies: curated question/answer pairs matched by embedding similarity before the
LLM is called (Dify's ``AppAnnotationService`` and its six tasks).

- :mod:`~worker.domain.annotation.store`: apps, settings, bindings, annotation texts, vectors;
- :mod:`~worker.domain.annotation.index`: one annotation in or out of the index;
- :mod:`~worker.domain.annotation.reply`: replies enabled (with a model) or disabled;
- :mod:`~worker.domain.annotation.imports`: the CSV import.
"""
