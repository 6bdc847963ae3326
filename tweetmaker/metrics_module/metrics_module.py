"""TweetMaker retrieval metrics as a Hugging Face ``evaluate`` module, loaded from this local folder.

    import evaluate
    metric = evaluate.load("tweetmaker/metrics_module")  # a path: works offline with HF_EVALUATE_OFFLINE=1
    metric.compute(predictions=text_embeddings, references=list(range(n)), document_embeddings=image_embeddings)

The numbers come from ``tweetmaker.metrics.retrieval_metrics`` (one implementation for the library, the
training script and this module).
"""

from __future__ import annotations

import datasets
import evaluate

from tweetmaker.metrics import K_VALUES, retrieval_metrics

_DESCRIPTION = """Cross-modal retrieval metrics: each query embedding ranks all document embeddings by cosine
similarity. Exact pairs give recall@k, MRR, median and mean rank; attribute labels add precision@k."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: query embeddings, one list of floats per query (L2-normalised).
    references: for each query, the index of its one relevant document in ``document_embeddings``.
    document_embeddings: the documents' embeddings, shape (n_documents, dim).
    query_labels / document_labels (optional): attribute labels; documents sharing the query's label are relevant
        for precision@k.
    k_values (optional): cut-offs, default (1, 5, 10, 50, 100).
Returns:
    dict with recall@k, mrr, median_rank, mean_rank and, with labels, precision@k.
Example:
    >>> metric = evaluate.load("tweetmaker/metrics_module")
    >>> metric.compute(predictions=[[1.0, 0.0], [0.0, 1.0]], references=[0, 1],
    ...                document_embeddings=[[1.0, 0.0], [0.0, 1.0]], k_values=[1])["recall@1"]
    1.0
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TweetMakerRetrieval(evaluate.Metric):
    """recall@k / MRR / median rank on exact pairs and precision@k on attributes."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        document_embeddings=None,
        query_labels=None,
        document_labels=None,
        k_values=K_VALUES,
    ) -> dict[str, float]:
        if document_embeddings is None:
            raise ValueError("Pass document_embeddings=... (the embeddings the queries rank)")
        return retrieval_metrics(
            predictions,
            document_embeddings,
            positives=references,
            query_labels=query_labels,
            document_labels=document_labels,
            k_values=k_values,
        )
