"""Hypothesis strategies for kio types that kio does not register itself."""

from __future__ import annotations

import datetime

from hypothesis import strategies as st
from kio.serial.readers import tz_aware_from_i64
from kio.static.primitive import Records, TZAware, i32Timedelta, i64Timedelta

st.register_type_strategy(Records, st.binary(max_size=64).map(Records))
st.register_type_strategy(
    i64Timedelta,
    st.integers(-1, 2**40).map(lambda ms: i64Timedelta.parse(datetime.timedelta(milliseconds=ms))),
)
st.register_type_strategy(
    i32Timedelta,
    st.integers(-1, 2**31 - 1).map(
        lambda ms: i32Timedelta.parse(datetime.timedelta(milliseconds=ms))
    ),
)
st.register_type_strategy(TZAware, st.integers(0, 2**41).map(tz_aware_from_i64))
