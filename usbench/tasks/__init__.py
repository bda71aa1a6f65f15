"""Task-based metrics: mask adherence through a lesion segmenter, lesion-presence consistency, and
downstream utility (does adding generated images help a benign-vs-malignant classifier?), with
DeLong intervals. See docs/tasks.md."""
