"""The verification harness: stress scenarios in real processes, the success-metric gate and
the reports. Run it with ``python -m bench run`` (or ``nox -s bench``)."""
