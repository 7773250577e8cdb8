import pytest

from conversion.settings import ServingOptions


@pytest.mark.parametrize("size", [0, -5])
def test_a_max_batch_size_below_one_is_refused(size):
    with pytest.raises(ValueError, match=f"max batch size {size}: must be at least 1"):
        ServingOptions(max_batch_size=size)


def test_a_max_batch_size_of_one_is_accepted():
    assert ServingOptions(max_batch_size=1).max_batch_size == 1
