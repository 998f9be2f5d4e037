"""atheris harness: DBR decoding and put value conversion, both backends.

    python fuzz/fuzz_ca.py -runs=200000              # decoder (pure, fast)
    CA_FUZZ_TARGET=put python fuzz/fuzz_ca.py -runs=20000              # C backend, real IOC
    CA_FUZZ_TARGET=put CACHANNEL_BACKEND=caffi python fuzz/fuzz_ca.py -runs=20000

Any Python exception other than the clean ones (TypeError/ValueError/
OverflowError for puts) is a finding; a crash is a finding. The number of
executions is printed by libFuzzer at the end
("Done N runs") and every 2000 inputs with the put outcome counts.
"""
import atexit
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
with atheris.instrument_imports():
    import ca_fuzz  # noqa: E402
    from CaChannel import _common  # noqa: E402,F401  (decoder under coverage)

TARGET = os.environ.get("CA_FUZZ_TARGET", "decode")
COUNT = {"n": 0}
_put = None


def value_from(fdp):
    kind = fdp.ConsumeIntInRange(0, 11)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 12))
    if kind == 2:
        return fdp.ConsumeFloat()
    if kind == 3:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 60))
    if kind == 4:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 60))
    if kind == 5:
        return [fdp.ConsumeFloat() for _ in range(fdp.ConsumeIntInRange(0, 12))]
    if kind == 6:
        return [fdp.ConsumeInt(5) for _ in range(fdp.ConsumeIntInRange(0, 12))]
    if kind == 7:
        return [fdp.ConsumeUnicode(8) for _ in range(fdp.ConsumeIntInRange(0, 12))]
    if kind == 8:
        import numpy as np
        dtypes = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32",
                  "float64", "bool", "complex64"]
        dt = np.dtype(dtypes[fdp.ConsumeIntInRange(0, len(dtypes) - 1)])
        raw = fdp.ConsumeBytes(dt.itemsize * fdp.ConsumeIntInRange(0, 12))
        raw = raw[:len(raw) // dt.itemsize * dt.itemsize]
        return np.frombuffer(raw, dt)
    if kind == 9:
        return fdp.ConsumeBool()
    if kind == 10:
        return {"a": 1} if fdp.ConsumeBool() else object()
    return (fdp.ConsumeFloat(), fdp.ConsumeUnicode(5))


def one_put(data):
    fdp = atheris.FuzzedDataProvider(data)
    pv = ca_fuzz.PV_NAMES[fdp.ConsumeIntInRange(0, len(ca_fuzz.PV_NAMES) - 1)]
    chtype = fdp.ConsumeIntInRange(-2, 40)
    chtype = None if chtype == -2 else chtype
    count = fdp.ConsumeIntInRange(-1, 12)
    count = None if count == -1 else count
    _put.check_put(pv, value_from(fdp), chtype, count)


def TestOneInput(data):
    COUNT["n"] += 1
    if COUNT["n"] % 2000 == 0:
        report()
    if TARGET == "put":
        one_put(data)
    else:
        ca_fuzz.check_decode(data)


def report():
    print("fuzz target %s: %d executions%s" % (
        TARGET, COUNT["n"], (" %s" % _put.stats) if _put else ""), flush=True)


if __name__ == "__main__":
    if TARGET == "put":
        _put = ca_fuzz.PutTarget()
    atexit.register(report)
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
