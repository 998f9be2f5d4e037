"""notify_disconnect: kill the IOC under a subscription, restart it (one ~10 s cycle)."""
import json
import os
import subprocess
import sys
import sysconfig

from CaChannel import ca

HERE = os.path.dirname(os.path.abspath(__file__))


def test_notify_disconnect_across_ioc_restart():
    env = dict(os.environ)
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "aio_restart_worker.py")], env=env,
                          capture_output=True, text=True, timeout=180)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert r["first"] == [3.0, True]
    # the disconnection reaches the notify_disconnect subscriber as a false CANothing
    assert r["down"] == ["CANothing", False, ca.ECA_DISCONN, "ar:ao"]
    # a put waiting for completion at the kill fails; a get while down times out
    assert r["pending_put"] != ca.ECA_NORMAL
    assert r["get_while_down"] == ca.ECA_TIMEOUT
    # after the restart the subscriptions resume and a waiting caget completes
    assert r["up"] == [3.0, True]
    assert r["later_get"] == 3.0
    # the plain subscriber saw no disconnect notice, only the value again
    assert r["plain"] == ["ca_float", 0]
    assert r["states"] == [1, 1]
