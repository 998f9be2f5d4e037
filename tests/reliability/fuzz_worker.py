"""hypothesis over put value conversion against a real IOC (fuzz/ca_fuzz.py).

``python fuzz_worker.py EXAMPLES`` prints ``RESULT {json}`` with the counts.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "fuzz"))

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import ca_fuzz  # noqa: E402

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=60), st.binary(max_size=60), st.complex_numbers())
arrays = hnp.arrays(st.sampled_from([np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                     np.uint32, np.int64, np.float32, np.float64, np.bool_]),
                    hnp.array_shapes(min_dims=0, max_dims=2, max_side=10))
values = st.one_of(scalars, st.lists(scalars, max_size=12), st.tuples(scalars, scalars),
                   arrays, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def main(examples: int) -> dict:
    target = ca_fuzz.PutTarget()
    try:
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(pv=st.sampled_from(ca_fuzz.PV_NAMES), value=values,
               chtype=st.one_of(st.none(), st.integers(-2, 40)),
               count=st.one_of(st.none(), st.integers(-1, 12)))
        def prop(pv, value, chtype, count):
            target.check_put(pv, value, chtype, count)

        prop()
        return dict(target.stats)
    finally:
        target.close()


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(int(sys.argv[1]))), flush=True)
    os._exit(0)
