"""``python -m relcal``: the same as the ``relcal`` command."""

from relcal.cli import run

if __name__ == "__main__":
    run()
