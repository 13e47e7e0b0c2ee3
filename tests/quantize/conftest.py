"""Fixtures: a CNN and a BERT-style encoder exported once per session."""

from __future__ import annotations

import pytest

from ._helpers import exported


@pytest.fixture(scope="session")
def cnn():
    return exported("edgeexport.zoo:resnet_small", "1,3,64,64")


@pytest.fixture(scope="session")
def bert():
    return exported("edgeexport.zoo:bert_tiny", "input_ids=1,16:int64",
                    "attention_mask=1,16:int64")
