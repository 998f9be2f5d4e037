"""Run as a script: falsy connection/access callbacks see a server go away.

Starts its own IOC (its address must be in EPICS_CA_ADDR_LIST before the
first context), installs falsy callables with ``ca.change_connection_event``,
``ca.replace_access_rights_event``, ``CaChannel.change_connection_event`` and
``CaChannel.replace_access_rights_event``, kills the IOC and checks that each
saw the disconnect. Prints ``OK`` and exits 0, or fails with an assertion.
"""
import os
import sys
import tempfile

from falsy import AlwaysFalseRecorder, CallRecorder, make

DB = 'record(ao, "cbdrop:x") {\n    field(VAL, "1")\n}\n'


def main() -> None:
    from CaChannel.testing import IOC
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "drop.db")
        with open(db, "w") as f:
            f.write(DB)
        ioc = IOC([db], ready_pv="cbdrop:x").start()
        try:
            os.environ.update(ioc.client_env())
            run(ioc)
        finally:
            if ioc.running:
                ioc.kill()
    print("OK")


def run(ioc) -> None:
    from CaChannel import CaChannel, ca
    assert ca.create_context(True) == ca.ECA_NORMAL
    recs = {}
    chids = []
    for cls in (CallRecorder, AlwaysFalseRecorder):
        status, chid = ca.create_channel("cbdrop:x")
        assert status == ca.ECA_NORMAL and ca.pend_io(10) == ca.ECA_NORMAL
        chids.append(chid)
        conn, access = make(cls), make(cls)
        assert ca.change_connection_event(chid, conn) == ca.ECA_NORMAL
        assert ca.replace_access_rights_event(chid, access) == ca.ECA_NORMAL
        assert len(access.calls) == 1, "ca.replace_access_rights_event: falsy callable not called"
        recs["ca.change_connection_event/%s" % cls.__name__] = (conn, chid)
        recs["ca.replace_access_rights_event/%s" % cls.__name__] = (access, chid)
        chan = CaChannel("cbdrop:x")
        chan.searchw()
        hconn, haccess = make(cls), make(cls)
        chan.change_connection_event(hconn, 0, "")
        chan.replace_access_rights_event(haccess, 0)
        assert len(haccess.calls) == 1
        recs["CaChannel.change_connection_event/%s" % cls.__name__] = (hconn, chan)
        recs["CaChannel.replace_access_rights_event/%s" % cls.__name__] = (haccess, chan)
    ioc.kill()  # the circuit closes: every channel disconnects at once
    for what, (rec, owner) in recs.items():
        if what.startswith("ca.change"):
            (arg,), = rec.wait(what=what)
            assert arg == {"chid": owner, "op": ca.CA_OP.CONN_DOWN}, (what, arg)
        elif what.startswith("ca.replace"):
            calls = rec.wait(2, what=what)
            assert calls[1][0]["read_access"] is False, (what, calls)
        elif what.startswith("CaChannel.change"):
            ((chid, op), user_args), = rec.wait(what=what)
            assert op == ca.CA_OP_CONN_DOWN and user_args == (0, ""), (what, op, user_args)
        else:
            calls = rec.wait(2, what=what)
            assert calls[1][0]["read_access"] is False and calls[1][1] == 0, (what, calls)
    for chid in chids:
        ca.clear_channel(chid)


if __name__ == "__main__":
    sys.exit(main())
