"""Compatibility module: ``import epicsMotor; epicsMotor.epicsMotor(name)``."""
from CaChannel.epicsMotor import *  # noqa: F401,F403
from CaChannel.epicsMotor import __all__, epicsMotor, epicsMotorException  # noqa: F401
