"""Compatibility module: ``import epicsPV; epicsPV.epicsPV(name)``."""
from CaChannel.epicsPV import *  # noqa: F401,F403
from CaChannel.epicsPV import __all__, callBack, getCallback, putCallBack, epicsPV, ca, CaChannel  # noqa: F401
