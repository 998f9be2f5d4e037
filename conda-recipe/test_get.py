"""conda recipe test: a get (and a put read back) against an IOC started here."""
import os
import tempfile

from CaChannel.testing import IOC

DB = """
record(ao, "conda:test") {
    field(VAL, "4.5")
    field(PINI, "YES")
}
"""

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "conda.db")
    with open(path, "w") as f:
        f.write(DB)
    with IOC([path]) as ioc:
        os.environ.update(ioc.client_env())  # before the first CA context
        from CaChannel import CaChannel, ca

        chan = CaChannel("conda:test")
        chan.setTimeout(5.0)
        chan.searchw()
        first = chan.getw()
        assert first == 4.5, first
        chan.putw(6.25)
        assert chan.getw() == 6.25
        assert ioc.shell("dbgf conda:test").find("6.25") >= 0
        print("CaChannel", ca.backend, "get ok:", first)
