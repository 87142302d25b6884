from __future__ import annotations

import numpy as np
import pytest
from index_fakes import clustered, random_ids


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x = clustered(6000)
    return x, random_ids(len(x))
