"""Agreement between mixture-component assignments and true labels."""

import numpy as np
from sklearn import metrics as sk_metrics


def contingency(assignment, label, num_components: int,
                num_classes: int) -> np.ndarray:
    """Counts of points per (component, class).

    Args:
      assignment: int `[N]` component index in [0, num_components).
      label: int `[N]` class index; points with label < 0 are ignored.
      num_components: number of components K.
      num_classes: number of classes C.

    Returns:
      int64 `[K, C]` counts.
    """
    assignment = np.asarray(assignment, np.int64)
    label = np.asarray(label, np.int64)
    known = label >= 0
    flat = assignment[known] * num_classes + label[known]
    counts = np.bincount(flat, minlength=num_components * num_classes)
    return counts.reshape(num_components, num_classes)


def clustering_scores(assignment, label, num_components: int) -> dict:
    """Purity, NMI and ARI of an assignment against labels.

    Args:
      assignment: int `[N]` component index in [0, num_components).
      label: int `[N]` class index; points with label < 0 are ignored.
      num_components: number of components K.

    Returns:
      Dict with `purity` (share of points in their component's majority
      class), `nmi` and `ari`; all NaN when no point has a label.
    """
    assignment = np.asarray(assignment, np.int64)
    label = np.asarray(label, np.int64)
    known = label >= 0
    if not np.any(known):
        return {'purity': float('nan'), 'nmi': float('nan'),
                'ari': float('nan')}
    assignment, label = assignment[known], label[known]
    counts = contingency(assignment, label, num_components,
                         int(label.max()) + 1)
    return {
        'purity': float(counts.max(axis=1).sum() / len(label)),
        'nmi': float(sk_metrics.normalized_mutual_info_score(label,
                                                             assignment)),
        'ari': float(sk_metrics.adjusted_rand_score(label, assignment)),
    }
