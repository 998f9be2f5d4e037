"""Every public name of the ``ca`` module is exercised by the low-level tests."""
import os
import re

from CaChannel import ca

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_public_name_is_used_by_a_test():
    text = ""
    for fn in os.listdir(HERE):
        if fn.startswith("test_ll_") and fn != "test_ll_coverage.py":
            text += open(os.path.join(HERE, fn), encoding="utf-8").read()
    used = set(re.findall(r"\bca\.([A-Za-z_][A-Za-z0-9_]*)", text))
    # enum families are exercised member by member through getattr/indexing
    families = ("ECA_", "DBR_", "DBF_", "CA_OP_", "CA_K_", "DBE_", "CA_PRIORITY_", "cs_")
    indirect = {n for n in ca.__all__ if n.startswith(families) or n.endswith("_ALARM")}
    missing = sorted(set(ca.__all__) - used - indirect)
    assert not missing, "public names no low-level test uses: %s" % missing
