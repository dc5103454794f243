"""The defaults the library and ``curate --help`` share, written once.

Plain values, no imports: the CLI reads them at start-up (``curate --help`` shows them)
and the library's requests and functions take them as their defaults.
"""

from __future__ import annotations

#: the model preset an export's lavis.yaml is written for (curation.presets)
PRESET = "tiny"
#: the shares of records an export or a mix puts in val and in test (train: the rest)
VAL_SHARE = 0.1
TEST_SHARE = 0.1
FRACTIONS = (round(1 - VAL_SHARE - TEST_SHARE, 9), VAL_SHARE, TEST_SHARE)
#: "yes" among a mix's task yes/no records after balancing
YES_SHARE = 0.5
#: the share of a mix's train general records that are distractor questions
DISTRACTOR_SHARE = 0.1
#: images per generate() batch when a checkpoint is scored
EVAL_BATCH_SIZE = 32
#: the false-alarm budget eval chooses the operating point within
MAX_FALSE_ALARM = 0.05
#: the FiftyOne sample field eval writes its predictions to
EVAL_FIELD = "eval_prediction"
