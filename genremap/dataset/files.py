"""Names of the files the stages write into a dataset folder.

No imports: the folder's bookkeeping (genremap.dataset.folder) reads them without loading the
audio stack that writes some of them.
"""

FEATURES_CSV = "features.csv"
PITCHES_CSV = "pitches.csv"
TIMBRES_CSV = "timbres.csv"
ERRORS_CSV = "features_errors.csv"
EVALUATION_JSON = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"
PER_CLASS_PNG = "per_class_f1.png"
